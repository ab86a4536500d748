//! The kernel's mount calls that workers' roots are made of, below both
//! ways of building one ([`crate::view`]'s full build and
//! [`crate::template`]'s copies) and the namespace layer: detached trees
//! (`open_tree`, `fsopen`/`fsmount`), moving one into place, an overlay of
//! a kept setup beneath a task's own layer, and the flags a remount must
//! keep. No policy here: what is mounted where is the callers'.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `open_tree` flag: a detached copy of the tree.
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `move_mount` flag: the source is the fd itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
/// `move_mount` flags: a symbolic link (or automount point) at the target
/// is followed, as `mount` follows it.
const MOVE_MOUNT_T_SYMLINKS: libc::c_uint = 0x10;
const MOVE_MOUNT_T_AUTOMOUNTS: libc::c_uint = 0x20;

/// A detached copy of the tree at `source` (its submounts included).
pub(crate) fn open_tree(source: &Path) -> std::io::Result<OwnedFd> {
    let path = cstr(source).map_err(std::io::Error::other)?;
    open_tree_at(libc::AT_FDCWD, &path, 0)
}

/// A detached copy of the tree `opened` is (an `O_PATH` descriptor), its
/// submounts included: what was opened, whatever is at its path now.
pub(crate) fn open_tree_of(opened: &OwnedFd) -> std::io::Result<OwnedFd> {
    open_tree_at(opened.as_raw_fd(), c"", libc::AT_EMPTY_PATH as libc::c_uint)
}

fn open_tree_at(
    dir: RawFd,
    path: &std::ffi::CStr,
    flags: libc::c_uint,
) -> std::io::Result<OwnedFd> {
    let flags = flags
        | OPEN_TREE_CLONE
        | libc::O_CLOEXEC as libc::c_uint
        | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: a valid fd (or `AT_FDCWD`) and C string; the fd returned is
    // ours.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        let fd = libc::syscall(libc::SYS_open_tree, dir, path.as_ptr(), flags);
        if fd == -1 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = RawFd::try_from(fd).map_err(std::io::Error::other)?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Moves the detached tree `tree` onto `target`.
pub(crate) fn move_mount(tree: &OwnedFd, target: &Path) -> std::io::Result<()> {
    let target = cstr(target).map_err(std::io::Error::other)?;
    // SAFETY: a valid fd, an empty C string and a valid C string.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS | MOVE_MOUNT_T_AUTOMOUNTS,
        )
    };
    if ret == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A new overlay file system of `lower` beneath `upper` (`work` its
/// scratch directory, beside `upper`), detached: `nosuid`, `nodev`;
/// `proc` is where the caller's proc file system is. In a user namespace
/// the overlay must keep its records in `user.` attributes: asked for
/// when the first try is refused.
pub(crate) fn overlay_tree(
    lower: &Path,
    upper: &Path,
    work: &Path,
    proc: &Path,
) -> std::io::Result<OwnedFd> {
    // The option syntax's separators refused as the full build does.
    overlay_options(lower, upper, work).map_err(std::io::Error::other)?;
    // Every mount of the launcher's namespace is read-only, and an
    // overlay refuses an upper layer there: the layers' directory is
    // reached through a detached copy of its tree made writable, by its
    // descriptor's path. (Both layers lie in one directory.)
    let (Some(layers), Some(upper_name), Some(work_name)) =
        (upper.parent(), upper.file_name(), work.file_name())
    else {
        return Err(std::io::Error::other("an overlay's layers need a parent"));
    };
    if work.parent() != Some(layers) {
        return Err(std::io::Error::other(
            "an overlay's upper and work directories must be side by side",
        ));
    }
    let tree = open_tree(layers)?;
    writable(&tree)?;
    let through = |name: &std::ffi::OsStr| {
        proc.join(format!("self/fd/{}", tree.as_raw_fd()))
            .join(name)
    };
    let (lower, upper, work) = (
        cstr(lower).map_err(std::io::Error::other)?,
        cstr(&through(upper_name)).map_err(std::io::Error::other)?,
        cstr(&through(work_name)).map_err(std::io::Error::other)?,
    );
    let mut options = vec![
        (c"lowerdir", Some(lower.as_c_str())),
        (c"upperdir", Some(upper.as_c_str())),
        (c"workdir", Some(work.as_c_str())),
    ];
    let attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    new_mount(c"overlay", &options, attrs).or_else(|_| {
        options.push((c"userxattr", None));
        new_mount(c"overlay", &options, attrs)
    })
}

/// Makes the detached tree `tree` (its top mount) writable.
fn writable(tree: &OwnedFd) -> std::io::Result<()> {
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    let attr = libc::mount_attr {
        attr_set: 0,
        attr_clr: MOUNT_ATTR_RDONLY,
        propagation: 0,
        userns_fd: 0,
    };
    set_attr(tree, &attr, false)
}

/// Sets `attr` on the detached tree `tree`: its top mount, or with
/// `recursive` every mount of it.
pub(crate) fn set_attr(
    tree: &OwnedFd,
    attr: &libc::mount_attr,
    recursive: bool,
) -> std::io::Result<()> {
    let flags = match recursive {
        true => libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
        false => libc::AT_EMPTY_PATH,
    };
    // SAFETY: a valid fd, an empty C string and a struct of the caller's
    // whose size is passed with it.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            flags,
            attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if ret == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A new proc file system (of the caller's PID namespace), detached:
/// `nosuid`, `nodev`, `noexec`.
pub(crate) fn fresh_proc() -> std::io::Result<OwnedFd> {
    new_mount(
        c"proc",
        &[],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
    )
}

/// `fsmount` attributes.
const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
const MOUNT_ATTR_NOEXEC: libc::c_uint = 0x8;

/// A new file system of type `fstype`, detached, with `attrs`: each of
/// `options` set first, a string (`Some`) or a flag (`None`).
fn new_mount(
    fstype: &std::ffi::CStr,
    options: &[(&std::ffi::CStr, Option<&std::ffi::CStr>)],
    attrs: libc::c_uint,
) -> std::io::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_FLAG: libc::c_uint = 0;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    let owned = |ret: libc::c_long| -> std::io::Result<OwnedFd> {
        if ret == -1 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = RawFd::try_from(ret).map_err(std::io::Error::other)?;
        // SAFETY: a fresh fd the kernel just gave us.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    // SAFETY: C strings that outlive the calls (null where the call
    // takes none), and fds of ours.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        let context = owned(libc::syscall(
            libc::SYS_fsopen,
            fstype.as_ptr(),
            FSOPEN_CLOEXEC,
        ))?;
        let config = |cmd: libc::c_uint, key: *const libc::c_char, value: *const libc::c_char| {
            match libc::syscall(libc::SYS_fsconfig, context.as_raw_fd(), cmd, key, value, 0) {
                -1 => Err(std::io::Error::last_os_error()),
                _ => Ok(()),
            }
        };
        for (key, value) in options {
            match value {
                Some(value) => config(FSCONFIG_SET_STRING, key.as_ptr(), value.as_ptr())?,
                None => config(FSCONFIG_SET_FLAG, key.as_ptr(), std::ptr::null())?,
            }
        }
        config(FSCONFIG_CMD_CREATE, std::ptr::null(), std::ptr::null())?;
        owned(libc::syscall(
            libc::SYS_fsmount,
            context.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            attrs,
        ))
    }
}

/// Flags a remount inside a user namespace must keep: the kernel refuses to
/// clear flags that were set when the mount was inherited.
pub(crate) fn locked_flags(mount_point: &Path) -> libc::c_ulong {
    let Some(stat) = statvfs(mount_point) else {
        return 0;
    };
    let pairs = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ];
    pairs
        .iter()
        .filter(|(st, _)| stat.f_flag & st != 0)
        .fold(0, |acc, (_, ms)| acc | ms)
}

/// The `ST_*` flags of the mount at `path`.
pub(crate) fn mount_flags(path: &Path) -> libc::c_ulong {
    statvfs(path).map_or(0, |s| s.f_flag)
}

fn statvfs(path: &Path) -> Option<libc::statvfs> {
    let path = cstr(path).ok()?;
    // SAFETY: `stat` is written by statvfs and read only on success.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(path.as_ptr(), &mut stat) == 0).then_some(stat)
    }
}

/// The options of an overlay mount of `lower` beneath `upper`: refused
/// for a path the option syntax cannot hold as it is (a `,`, a `:`, a
/// `\\`), rather than escaped.
pub(crate) fn overlay_options(lower: &Path, upper: &Path, work: &Path) -> Result<CString, String> {
    let mut text = Vec::new();
    for (key, path) in [("lowerdir", lower), ("upperdir", upper), ("workdir", work)] {
        let bytes = path.as_os_str().as_bytes();
        if bytes.iter().any(|b| matches!(b, b',' | b':' | b'\\')) {
            return Err(format!(
                "show {} as an overlay: its path holds a `,`, `:` or `\\`",
                path.display()
            ));
        }
        if !text.is_empty() {
            text.push(b',');
        }
        text.extend_from_slice(key.as_bytes());
        text.push(b'=');
        text.extend_from_slice(bytes);
    }
    CString::new(text).map_err(|e| e.to_string())
}

/// `path` as a C string for a system call (refused if it holds a NUL).
pub(crate) fn cstr(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())
}
