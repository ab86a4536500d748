//! A sandbox cell's worker, made with the cell before its task comes and
//! confined as far as it can be without the task (x86-64).
//!
//! Of a worker's confinement, some steps are the same for every task of a
//! run: a session of its own, signals as a program expects them, the
//! parent-death signal, `no_new_privs`, and the seccomp filter of the
//! task's kind of network, whose install (the kernel converts, compiles
//! and runs the filter over every call number) was the largest single
//! step of a sandboxed spawn. A cell (see [`cell`](super::cell)) starts
//! its worker as it prepares, and the worker takes those steps then, with
//! raw calls (it shares the launcher's memory, beside it), and waits on a
//! socket. When the task comes, the cell's init sends it the task's fds
//! (its stdio, its failure pipe, its Landlock ruleset) and where its
//! arguments are, and the launcher goes on; the worker takes the task's
//! own steps (its fds, its directory, its limits, its identity and
//! capabilities, its Landlock domain) beside it, with raw calls, then
//! execs. What it execs under is what every worker execs
//! under; only the order of the steps differs, and every call of the later
//! steps is one the filter allows (it denies none of them).
//!
//! Nothing a task brings reaches the worker before its filter is in place,
//! and no task's code runs in it before it exec'd, confined whole. A
//! worker made ahead that died (killed) is replaced at the task by one
//! started the usual way: the cell's init sees its socket closed.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use super::raw::syscall4;

/// What the worker made ahead reads (in the cell's `Shared`, which does not
/// move while the cell lives).
pub(super) struct Armed {
    /// The filter of the network kind the cell is made for, its own copy.
    pub filter: seccompiler::BpfProgram,
    /// The worker's end of the socket its task comes on (its copy).
    pub worker_end: RawFd,
    /// The top of the stack it runs on.
    pub stack_top: usize,
    /// Its pid, once the cell started it (the cell's PID namespace's).
    pub pid: AtomicI32,
    /// Its tid as the kernel set it at its start (`CLONE_CHILD_SETTID`),
    /// and cleared, with a futex wake-up, as it execs or exits
    /// (`CLONE_CHILD_CLEARTID`: its memory is the launcher's, so the
    /// kernel does that at `execve` too). The cell's init waits on it for
    /// the worker's `execve` (see [`hand_over`]).
    pub running: AtomicU32,
    /// Where the worker goes on once its task came: `child::armed_worker`,
    /// with the arguments' address and the fds received (the arguments
    /// live until its `execve`: the cell's init waits for that on
    /// `running`).
    pub then: extern "C" fn(usize, *const RawFd, usize) -> libc::c_int,
}

/// What a cell's init writes on its `ready` pipe once its worker made
/// ahead has its task (see [`hand_over`]); then, as every init, a 1 once
/// the worker runs.
pub(super) const HANDED: u8 = 4;

/// The most fds a task sends its worker: its own (see
/// [`MAX_FDS`](super::MAX_FDS)), its failure pipe and its ruleset.
pub(super) const MOST_FDS: usize = super::MAX_FDS + 2;

/// Starts the worker in the cell (raw calls: the launcher runs beside);
/// its pid, or `-errno`.
pub(super) fn start(armed: &Armed) -> isize {
    // SAFETY: the worker runs on a stack of its own (the cell's second,
    // lent to nothing else while it lives), reads `armed` (in the cell's
    // boxed `Shared`) and makes raw calls only until its task comes.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let pid = unsafe {
        super::raw::clone_raw(
            (libc::CLONE_VM | libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD)
                as usize,
            armed.stack_top,
            armed.running.as_ptr() as usize,
            entry,
            std::ptr::from_ref(armed).cast_mut().cast(),
        )
    };
    if let Ok(pid) = i32::try_from(pid)
        && pid > 0
    {
        armed.pid.store(pid, Ordering::Release);
    }
    pid
}

/// The worker made ahead: the steps that do not depend on its task, then a
/// wait for it (see the module's documentation).
extern "C" fn entry(armed: *mut libc::c_void) -> libc::c_int {
    // SAFETY: the pointer `start` passed, to the cell's `Armed`, which
    // lives until the cell is reaped (and so the worker, killed with it).
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let armed = unsafe { &*armed.cast::<Armed>() };
    if arm(armed).is_err() {
        super::raw::exit(super::EXIT_SANDBOX_FAILED);
    }
    let mut payload = 0usize;
    let mut fds = [-1 as RawFd; MOST_FDS];
    let Some(count) = receive(armed.worker_end, &mut payload, &mut fds) else {
        super::raw::exit(super::EXIT_SANDBOX_FAILED);
    };
    (armed.then)(payload, fds.as_ptr(), count)
}

/// The task-independent steps, in order; then one byte on the socket to
/// say the worker waits.
fn arm(armed: &Armed) -> Result<(), isize> {
    let check = |ret: isize| if ret < 0 { Err(ret) } else { Ok(ret) };
    // Closed first: the launcher's fds, of which the worker has a copy;
    // only its socket stays. (Not `confine::close_fds_sorted`: libc's
    // wrapper would write `errno`, which is the launcher's, running
    // beside.)
    let socket = armed.worker_end.unsigned_abs() as usize;
    let empty: u64 = 0;
    // The kernel's `struct sigaction` with SIG_DFL, no flags, no mask.
    let default = [0usize; 4];
    #[repr(C)]
    struct Fprog {
        len: u16,
        filter: *const seccompiler::sock_filter,
    }
    let fprog = Fprog {
        len: u16::try_from(armed.filter.len()).map_err(|_| -(libc::E2BIG as isize))?,
        filter: armed.filter.as_ptr(),
    };
    // SAFETY: raw calls on integers, locals of this frame and the filter,
    // which the cell's `Armed` keeps.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        let close_range = |from: usize, to: usize| {
            if from <= to {
                syscall4(libc::SYS_close_range, from, to, 0, 0);
            }
        };
        close_range(3, socket.wrapping_sub(1));
        close_range(socket + 1, u32::MAX as usize);
        check(syscall4(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as usize,
            (&raw const empty) as usize,
            0,
            8,
        ))?;
        check(syscall4(
            libc::SYS_rt_sigaction,
            libc::SIGPIPE as usize,
            default.as_ptr() as usize,
            0,
            8,
        ))?;
        // A session of its own: no controlling terminal (no TIOCSTI into
        // the user's shell), and a process group for group kills.
        check(syscall4(libc::SYS_setsid, 0, 0, 0, 0))?;
        check(syscall4(
            libc::SYS_prctl,
            libc::PR_SET_PDEATHSIG as usize,
            libc::SIGKILL as usize,
            0,
            0,
        ))?;
        check(syscall4(
            libc::SYS_prctl,
            libc::PR_SET_NO_NEW_PRIVS as usize,
            1,
            0,
            0,
        ))?;
        check(syscall4(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as usize,
            0,
            (&raw const fprog) as usize,
            0,
        ))?;
        let byte = 1u8;
        check(syscall4(
            libc::SYS_write,
            armed.worker_end as usize,
            (&raw const byte) as usize,
            1,
            0,
        ))?;
    }
    Ok(())
}

/// Waits for the task: one message with the address of its arguments and
/// its fds (close-on-exec). How many fds came, or `None` if the socket
/// closed (the cell goes) or the message is not one.
fn receive(socket: RawFd, payload: &mut usize, fds: &mut [RawFd; MOST_FDS]) -> Option<usize> {
    // Room for the control message: its header and the fds, aligned.
    const SPACE: usize = 128;
    const _: () = assert!(
        std::mem::size_of::<libc::cmsghdr>() + MOST_FDS * std::mem::size_of::<RawFd>() <= SPACE
    );
    #[repr(C, align(8))]
    struct Control([u8; SPACE]);
    let mut control = Control([0; SPACE]);
    let mut iov = libc::iovec {
        iov_base: std::ptr::from_mut(payload).cast(),
        iov_len: std::mem::size_of::<usize>(),
    };
    // SAFETY: a zeroed msghdr is a valid empty one; its fields are set
    // below to locals of this frame.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &raw mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.0.as_mut_ptr().cast();
    message.msg_controllen = SPACE;
    let n = loop {
        // SAFETY: recvmsg into the buffers described by `message`.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        let n = unsafe {
            syscall4(
                libc::SYS_recvmsg,
                socket as usize,
                (&raw mut message) as usize,
                libc::MSG_CMSG_CLOEXEC as usize,
                0,
            )
        };
        if n != -(libc::EINTR as isize) {
            break n;
        }
    };
    if n != std::mem::size_of::<usize>() as isize || message.msg_flags & libc::MSG_CTRUNC != 0 {
        return None;
    }
    // SAFETY: the control buffer the kernel filled, walked with the libc
    // crate's header arithmetic (pure computations, no libc calls).
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&raw const message);
        if header.is_null()
            || (*header).cmsg_level != libc::SOL_SOCKET
            || (*header).cmsg_type != libc::SCM_RIGHTS
        {
            return Some(0);
        }
        let data = libc::CMSG_DATA(header).cast::<RawFd>();
        let len = (*header).cmsg_len as usize;
        let count = len.saturating_sub(libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
        let count = count.min(MOST_FDS);
        for (i, slot) in fds.iter_mut().enumerate().take(count) {
            *slot = data.add(i).read_unaligned();
        }
        Some(count)
    }
}

/// In the cell's init, once the task's own steps are done: gives the task
/// to the worker made ahead, writes [`HANDED`] to `handed` (the launcher
/// goes on then, see `child::spawn_in_namespaces`), and waits until the
/// worker has exec'd or died. `task_end` is the cell's end of its socket,
/// `running` the worker's [`Armed::running`]; `args` the address of what
/// `then` reads, alive until this returns; `fds` what the worker is sent.
/// False if the worker made ahead cannot take it (gone, or the message
/// failed; nothing was written to `handed`): the caller ends it
/// ([`put_down`]) and starts one the usual way.
///
/// From the write to `handed` on, raw calls only: the launcher runs beside.
pub(super) fn hand_over(
    task_end: RawFd,
    running: &AtomicU32,
    args: usize,
    fds: &[RawFd],
    handed: RawFd,
) -> bool {
    use std::os::fd::BorrowedFd;
    // SAFETY: an fd of the cell's, open for the length of this call.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let task = unsafe { BorrowedFd::borrow_raw(task_end) };
    let mut byte = [0u8; 1];
    // Its word that it waits (sent once armed: it is long there by now).
    let armed = loop {
        match nix::unistd::read(task, &mut byte) {
            Err(nix::errno::Errno::EINTR) => {}
            Ok(1) => break true,
            _ => break false,
        }
    };
    if !armed {
        return false;
    }
    let payload = args.to_ne_bytes();
    let iov = [std::io::IoSlice::new(&payload)];
    let rights = [nix::sys::socket::ControlMessage::ScmRights(fds)];
    let sent = nix::sys::socket::sendmsg::<()>(
        task_end,
        &iov,
        &rights,
        nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
        None,
    );
    if sent.is_err() {
        return false;
    }
    let byte = HANDED;
    // SAFETY: a write of a local byte.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        syscall4(
            libc::SYS_write,
            handed.unsigned_abs() as usize,
            (&raw const byte) as usize,
            1,
            0,
        );
    }
    // Cleared by the kernel at its `execve` or its end, with a futex
    // wake-up. Not a pipe the `execve` closes: a pipe wakes its reader "sync",
    // on the closing CPU, where the worker goes on running, and init (and
    // the launcher, which waits for init) waited there until the worker
    // was done: for the whole of a short task, when the other CPU was
    // idle.
    loop {
        let tid = running.load(Ordering::Acquire);
        if tid == 0 {
            break;
        }
        // SAFETY: a futex wait on a word the launcher keeps until this
        // process says the worker runs, while it still holds `tid`; no
        // timeout.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            syscall4(
                libc::SYS_futex,
                running.as_ptr() as usize,
                libc::FUTEX_WAIT as usize,
                tid as usize,
                0,
            );
        }
    }
    true
}

/// Ends the worker made ahead, `pid`, that could not be given its task
/// (reaped: its stack is then free for the one started instead).
pub(super) fn put_down(pid: i32) {
    // SAFETY: kill and wait4 of init's own child.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        while libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL) == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
    }
}
