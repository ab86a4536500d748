//! The stack of a process that shares the launcher's memory (an
//! unconfined command or a worker on its way to `execve`, a worker's
//! init), and the `clone` that starts one on it. Its own file because the
//! launcher's children ([`child`](super::child)) and the sandbox cells
//! made ahead ([`cell`](super::cell)) both hold stacks, and a cell lends
//! its two to the children that start in it.

/// Where a process that shares the launcher's memory runs: an unconfined
/// command or a worker until it execs (its parent suspended meanwhile,
/// [`ChildStack::spawn`]), a worker's init for as long as it lives. A
/// mapping of its own with an inaccessible page below it, so that an
/// overflow faults instead of writing over memory the process shares.
pub(super) struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

impl ChildStack {
    /// Room for the frames of an init building a worker's namespaces (the
    /// deepest user), of a process on its way to `execve`, and for the
    /// formatting of a failure's message.
    const SIZE: usize = 256 << 10;

    /// The guard below the stack (larger than any page size Linux uses on
    /// the machines swarm runs on).
    const GUARD: usize = 64 << 10;

    /// The top of the stack (where a process started on it begins).
    pub fn top(&self) -> usize {
        self.base as usize + self.len
    }

    pub fn new() -> std::io::Result<Self> {
        let len = Self::SIZE + Self::GUARD;
        // SAFETY: a fresh anonymous mapping, owned by the value made here;
        // its lowest GUARD bytes are made inaccessible before any use.
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(std::io::Error::last_os_error());
            }
            let stack = Self { base, len };
            if libc::mprotect(base, Self::GUARD, libc::PROT_NONE) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(stack)
        }
    }

    /// Starts a process that shares this process's memory and runs
    /// `entry(arg)` on this stack, as `posix_spawn` does (`CLONE_VM |
    /// CLONE_VFORK`): the calling thread is suspended until the process has
    /// exec'd or exited. Returns its pid.
    ///
    /// # Safety
    ///
    /// `arg` must point to what `entry` expects, alive until the process
    /// execs or exits (it does while the caller is suspended, if it lives
    /// in the caller's frame); `entry` must never return into the caller's
    /// frames (it execs or exits).
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    pub(super) unsafe fn spawn(
        &self,
        entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
        arg: *mut libc::c_void,
    ) -> std::io::Result<i32> {
        // SAFETY: the caller's promise, and the caller is suspended while
        // the process runs on the stack.
        unsafe { self.clone_on(entry, arg, libc::CLONE_VM | libc::CLONE_VFORK) }
    }

    /// `clone(entry, top of this stack, flags | SIGCHLD, arg)`: the new
    /// process's pid.
    ///
    /// # Safety
    ///
    /// `flags` must not share the caller's memory with a process that
    /// could then touch what the caller uses, unless the caller is
    /// suspended meanwhile (`CLONE_VFORK`) or the process keeps to its own
    /// stack and raw system calls; nothing else may run on this stack
    /// while the process does; `arg` and `entry` as for [`Self::spawn`].
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    pub(super) unsafe fn clone_on(
        &self,
        entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
        arg: *mut libc::c_void,
        flags: libc::c_int,
    ) -> std::io::Result<i32> {
        // The top of the mapping, page-aligned and so 16-byte aligned, as
        // the ABI wants of a stack pointer.
        let top = self.base.cast::<u8>().wrapping_add(self.len);
        // SAFETY: the caller's promise.
        let pid = unsafe { libc::clone(entry, top.cast(), flags | libc::SIGCHLD, arg) };
        if pid == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(pid)
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping `new` made, used by no process any more: a
        // process started on it by `spawn` has exec'd or exited before
        // `spawn` returned, and the stacks of an init and its worker are
        // dropped once init is reaped (see `Namespaced`).
        #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
        unsafe {
            libc::munmap(self.base, self.len);
        }
    }
}
