//! System calls made without libc, for a worker's init once it runs
//! beside the launcher in the launcher's memory (see `child::init`).
//!
//! Init shares the launcher's address space, and with it the launcher's
//! thread-local storage: libc's wrappers write `errno` there on failure,
//! and the launcher, running at the same time, could read a number that
//! is not its own. So once the launcher goes on, init makes its few calls
//! (wait for signals, reap, kill, report, leave) through these, which
//! return the kernel's answer (a negative errno on failure) and touch no
//! memory but what they are given; so does a sandbox cell's worker on its
//! way to `execve`, and the confinement steps it takes (`confine`).

/// `syscall(nr, a, b, c, d)`: the kernel's return value, `-errno` on
/// failure ([`syscall5`] with no fifth argument).
///
/// # Safety
///
/// As for the system call `nr` with these arguments: pointers among them
/// must be valid for what the call does with them.
#[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
pub(crate) unsafe fn syscall4(nr: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
    // SAFETY: the caller's promise; a call of four arguments ignores the
    // fifth register.
    unsafe { syscall5(nr, a, b, c, d, 0) }
}

/// `syscall(nr, a, b, c, d, e)`: the kernel's return value, `-errno` on
/// failure.
///
/// # Safety
///
/// As for the system call `nr` with these arguments: pointers among them
/// must be valid for what the call does with them.
#[cfg(target_arch = "x86_64")]
#[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
pub(crate) unsafe fn syscall5(
    nr: libc::c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
) -> isize {
    let ret: isize;
    // SAFETY: the x86-64 system call convention: number in rax, arguments
    // in rdi, rsi, rdx, r10, r8; the kernel clobbers rcx and r11 and
    // returns in rax. The caller vouches for the arguments.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            in("r8") e,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// `syscall(nr, a, b, c, d, e)`: as on x86-64.
///
/// # Safety
///
/// As for the system call `nr` with these arguments.
#[cfg(target_arch = "aarch64")]
#[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
pub(crate) unsafe fn syscall5(
    nr: libc::c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
) -> isize {
    let ret: isize;
    // SAFETY: the AArch64 system call convention: number in x8, arguments
    // in x0-x4, result in x0. The caller vouches for the arguments.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a as isize => ret,
            in("x1") b,
            in("x2") c,
            in("x3") d,
            in("x4") e,
            options(nostack),
        );
    }
    ret
}

/// Everywhere else, libc's `syscall` (whose failure writes `errno`: there
/// a failing call of init's may leave the launcher a wrong `errno` to read).
///
/// # Safety
///
/// As for the system call `nr` with these arguments.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
pub(crate) unsafe fn syscall5(
    nr: libc::c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
) -> isize {
    // SAFETY: the caller vouches for the arguments.
    let ret = unsafe { libc::syscall(nr, a, b, c, d, e) };
    if ret == -1 {
        -(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO) as isize)
    } else {
        ret as isize
    }
}

/// Leaves the calling process with `code`, by a raw call: for a process
/// that shares the launcher's memory and runs beside it (a cell, its init,
/// its worker made ahead), which must not touch libc's state on its way
/// out.
pub(crate) fn exit(code: i32) -> ! {
    loop {
        // SAFETY: exit takes no pointers.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            syscall4(libc::SYS_exit, code.unsigned_abs() as usize, 0, 0, 0);
        }
    }
}

/// `value` in decimal, written at the end of `buf`: for a process that
/// runs beside the launcher, which must not allocate (a failure's errno,
/// a cell's `pid_max`).
pub(super) fn decimal(mut value: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        // A digit: `value % 10` is below 10.
        buf[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buf[at..];
        }
    }
}

/// `clone(flags)` of a process that starts on `stack_top` and runs
/// `entry(arg)`, then exits with what it returns (it should never
/// return). The parent gets the new process's pid, or `-errno`. libc's
/// `clone` would write `errno` on failure, and its caller (a sandbox cell,
/// see [`cell`](super::cell)) runs beside the launcher, whose `errno` it
/// is.
///
/// # Safety
///
/// `stack_top` must be the 16-byte aligned top of a mapping nothing else
/// runs on while the process lives; `flags` as for [`ChildStack::clone_on`](
/// super::stack::ChildStack::clone_on); `arg` as `entry` expects it;
/// `child_tid`, with `CLONE_CHILD_SETTID` or `CLONE_CHILD_CLEARTID`, the
/// address of an aligned 32-bit word that lives as long as the process.
#[cfg(target_arch = "x86_64")]
#[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
pub(super) unsafe fn clone_raw(
    flags: usize,
    stack_top: usize,
    child_tid: usize,
    entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    arg: *mut libc::c_void,
) -> isize {
    let ret: isize;
    // SAFETY: clone(flags, newsp, parent_tid, child_tid, tls): the child
    // returns 0 on the new stack with every register but rax, rcx and r11
    // as the parent had them, so r12 and r13 still hold `entry` and `arg`;
    // it calls `entry` (the stack is 16-byte aligned before the call, as
    // the ABI wants) and exits with its result, never leaving this block.
    // The parent returns from the block with the pid or -errno.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "mov rdi, r13",
            "call r12",
            "mov edi, eax",
            "mov eax, 60",
            "syscall",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone as isize => ret,
            in("rdi") flags,
            in("rsi") stack_top,
            in("rdx") 0usize,
            in("r10") child_tid,
            in("r8") 0usize,
            in("r12") entry,
            in("r13") arg,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}
