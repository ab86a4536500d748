//! The seccomp filter of a sandboxed worker: system calls a build, test or
//! codemod never needs and an attacker would (namespaces, ptrace, io_uring,
//! BPF, keyrings, mounts, terminal injection, non-Unix sockets). They fail
//! with EPERM (so tools see a plain error, not a crash). Without the
//! namespace layer, `setsid` and `setpgid` are denied too, so nothing can
//! leave the worker's process group and survive its kill; with it, the
//! worker's PID namespace is what contains it (everything in it dies with
//! the worker's init), so they are allowed: terminal programs (a PTY for
//! each command, as Codex runs its shell) need a session of their own. `clone3` and `openat2` fail with ENOSYS
//! because their flags live in memory a filter cannot read, and libc then
//! falls back to `clone` and `openat`, whose arguments the filter checks.
//!
//! No call may give a file the set-user-ID or set-group-ID bit (`chmod`
//! and its relatives, `open`/`creat`/`mknod` with such a mode): a copy of
//! a shell made set-user-ID in a worktree would outlive the task on the
//! host and hand its owner's identity to anyone who runs it.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

use crate::policy::Network;

/// System calls denied outright.
const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_fanotify_init,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
];

/// Denied without the namespace layer only: leaving the process group
/// would let a daemon outlive the task's group kill (and race the
/// coordinator's snapshot of the worktree). The helper's own setsid
/// happens before the filter is installed.
const GROUP_CALLS: &[libc::c_long] = &[libc::SYS_setsid, libc::SYS_setpgid];

/// `clone` flags that create namespaces (CLONE_NEWTIME shares its bit with
/// the exit signal in `clone`'s flags, and `unshare` is denied anyway).
const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn arch() -> Result<TargetArch, String> {
    std::env::consts::ARCH.try_into().map_err(|e| {
        format!(
            "seccomp filters are not supported on {}: {e:?}",
            std::env::consts::ARCH
        )
    })
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).map_err(|e| e.to_string())
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conditions).map_err(|e| e.to_string())
}

fn dword(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(|e| e.to_string())
}

/// The mode bits no file may be given.
const PRIVILEGE_BITS: [u64; 2] = [libc::S_ISUID as u64, libc::S_ISGID as u64];

/// Rules matching a call whose mode argument `mode` carries a privilege
/// bit; with `flags`, only when that argument asks for a file to be created
/// (`O_CREAT`, or `O_TMPFILE`), since the mode is garbage otherwise.
fn privileged_mode(mode: u8, flags: Option<u8>) -> Result<Vec<SeccompRule>, String> {
    // O_TMPFILE includes O_DIRECTORY; its own bit is the rest.
    let creating = [
        libc::O_CREAT as u64,
        (libc::O_TMPFILE & !libc::O_DIRECTORY) as u64,
    ];
    let mut rules = Vec::new();
    for bit in PRIVILEGE_BITS {
        let has_bit = dword(mode, SeccompCmpOp::MaskedEq(bit), bit)?;
        match flags {
            None => rules.push(rule(vec![has_bit])?),
            Some(flags) => {
                for create in creating {
                    rules.push(rule(vec![
                        dword(flags, SeccompCmpOp::MaskedEq(create), create)?,
                        has_bit.clone(),
                    ])?);
                }
            }
        }
    }
    Ok(rules)
}

/// Calls that set a file's mode, by (number, mode argument, flags argument).
const MODE_SETTERS: &[(libc::c_long, u8, Option<u8>)] = &[
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_chmod, 1, None),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_creat, 1, None),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_mknod, 1, None),
    #[cfg(target_arch = "x86_64")]
    (libc::SYS_open, 2, Some(1)),
    (libc::SYS_fchmod, 1, None),
    (libc::SYS_fchmodat, 2, None),
    (libc::SYS_fchmodat2, 2, None),
    (libc::SYS_mknodat, 2, None),
    (libc::SYS_openat, 3, Some(2)),
];

/// The main filter: EPERM for everything in its rules.
fn deny_filter(network: Network, contained: bool) -> Result<BpfProgram, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&nr| (nr, Vec::new())).collect();
    if !contained {
        rules.extend(GROUP_CALLS.iter().map(|&nr| (nr, Vec::new())));
    }
    for &(nr, mode, flags) in MODE_SETTERS {
        rules.insert(nr, privileged_mode(mode, flags)?);
    }
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| rule(vec![cond(0, SeccompCmpOp::MaskedEq(flag), flag)?]))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    let tty_rules = [libc::TIOCSTI, libc::TIOCLINUX]
        .iter()
        .map(|&req| {
            SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, req)
                .map_err(|e| e.to_string())
                .and_then(|c| rule(vec![c]))
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_ioctl, tty_rules);
    if network == Network::None {
        let unix_only = rule(vec![
            SeccompCondition::new(
                0,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Ne,
                libc::AF_UNIX as u64,
            )
            .map_err(|e| e.to_string())?,
        ])?;
        rules.insert(libc::SYS_socket, vec![unix_only]);
    }
    if let Network::Gateway { .. } = network {
        // IP sockets for the gateway's port (Landlock allows the connect);
        // netlink and packet sockets stay out.
        let ne = |family: i32| {
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, family as u64)
                .map_err(|e| e.to_string())
        };
        let other = rule(vec![
            ne(libc::AF_UNIX)?,
            ne(libc::AF_INET)?,
            ne(libc::AF_INET6)?,
        ])?;
        rules.insert(libc::SYS_socket, vec![other]);
    }
    compile(rules, libc::EPERM)
}

/// A filter that answers `errno` to every call its rules match and allows
/// the rest, for this machine's architecture (other architectures are
/// killed by the filter's own check).
fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<BpfProgram, String> {
    let errno = u32::try_from(errno).map_err(|e| e.to_string())?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno),
        arch()?,
    )
    .map_err(|e| e.to_string())?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())
}

/// A worker's filter, compiled once per run and network mode.
/// `contained`: the worker runs in a PID namespace of its own (the
/// namespace layer), so it may make sessions and process groups.
///
/// seccompiler gives one errno per filter, and `clone3` and `openat2` need
/// ENOSYS (so libc falls back to `clone` and `openat`) where everything
/// else gets EPERM. A second filter would cost a second BPF JIT compilation
/// in every worker (~90 µs here), so that check is four instructions put in
/// front of the compiled filter instead. It needs no architecture check of
/// its own: the numbers are `clone3` and `openat2` on every architecture
/// Linux has, and any other architecture's calls are killed by the filter's
/// own check right after.
pub(crate) fn compile_filter(network: Network, contained: bool) -> Result<BpfProgram, String> {
    // Instruction codes from linux/bpf_common.h.
    const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const BPF_JMP_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const SECCOMP_DATA_NR_OFFSET: u32 = 0;
    let clone3 = u32::try_from(libc::SYS_clone3).map_err(|e| e.to_string())?;
    let openat2 = u32::try_from(libc::SYS_openat2).map_err(|e| e.to_string())?;
    let enosys = u32::try_from(libc::ENOSYS).map_err(|e| e.to_string())?;
    let insn = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    let mut program = vec![
        insn(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR_OFFSET),
        insn(BPF_JMP_JEQ_K, 1, 0, clone3),
        insn(BPF_JMP_JEQ_K, 0, 1, openat2),
        insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ERRNO | enosys),
    ];
    program.extend(deny_filter(network, contained)?);
    Ok(program)
}

/// Installs `filter` on the current thread (and so its children).
/// Requires `no_new_privs` (or CAP_SYS_ADMIN).
pub(crate) fn apply(filter: &BpfProgram) -> Result<(), String> {
    seccompiler::apply_filter(filter).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_for_this_machine() {
        let none = compile_filter(Network::None, true).unwrap();
        let full = compile_filter(Network::Full, true).unwrap();
        let gateway = compile_filter(Network::Gateway { port: 0 }, true).unwrap();
        let baseline = compile_filter(Network::None, false).unwrap();
        assert!(baseline.len() > none.len());
        // The socket rule is the only difference.
        assert!(none.len() > full.len());
        assert!(gateway.len() > full.len());
        assert_eq!(none[..4], full[..4]);
    }
}
