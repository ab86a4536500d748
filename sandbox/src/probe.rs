//! What this machine's kernel offers for confinement, for `swarm doctor` and
//! for the check that refuses to run sandboxed tasks where the sandbox could
//! not be enforced (fail closed).

use crate::confine::REQUIRED_ABI;

/// Confinement features of the running kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Support {
    /// Landlock ABI version, `None` if Landlock is unavailable.
    pub landlock_abi: Option<i64>,
    /// Why Landlock is unavailable, when it is.
    pub landlock_error: Option<String>,
    /// Whether seccomp filters can be installed.
    pub seccomp: bool,
}

/// Asks the kernel.
pub fn probe() -> Support {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute pointer and size 0 this call only
    // returns the ABI version; PR_GET_SECCOMP takes no pointers.
    #[expect(unsafe_code, reason = "the kernel interface: see the SAFETY comment")]
    let (abi, seccomp) = unsafe {
        let abi = libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        );
        let abi = if abi < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(abi)
        };
        (abi, libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0)
    };
    let (landlock_abi, landlock_error) = match abi {
        Ok(v) => (Some(v), None),
        Err(e) => (
            None,
            Some(match e.raw_os_error() {
                Some(libc::ENOSYS) => "the kernel was built without Landlock".to_string(),
                Some(libc::EOPNOTSUPP) => {
                    "Landlock is disabled (add `landlock` to the lsm= boot parameter)".to_string()
                }
                _ => e.to_string(),
            }),
        ),
    };
    Support {
        landlock_abi,
        landlock_error,
        seccomp,
    }
}

/// The Landlock ABI swarm requires, as a number.
pub fn required_abi() -> i64 {
    REQUIRED_ABI as i64
}

impl Support {
    /// `Err` with the reason when sandboxed workers cannot be fully
    /// confined on this machine.
    pub fn require(&self) -> Result<(), String> {
        match self.landlock_abi {
            None => Err(format!(
                "Landlock is not available: {}",
                self.landlock_error.as_deref().unwrap_or("unknown reason")
            )),
            Some(abi) if abi < required_abi() => Err(format!(
                "the kernel offers Landlock ABI {abi}, swarm needs ABI {} (Linux 6.12 or newer) for signal and socket scoping",
                required_abi()
            )),
            Some(_) if !self.seccomp => {
                Err("seccomp filters are not available in this kernel".into())
            }
            Some(_) => Ok(()),
        }
    }
}
