//! The seccomp filter of a sandboxed worker: system calls a build, test or
//! codemod never needs and an attacker would (namespaces, ptrace, io_uring,
//! BPF, keyrings, mounts, terminal injection, non-Unix sockets). They fail
//! with EPERM (so tools see a plain error, not a crash), but for a socket
//! of a family the worker's network does not give it, which fails with
//! EAFNOSUPPORT ("Address family not supported by protocol"): what a kernel
//! without that family says, which tools handle (as IPv6 missing), and a
//! mark no other refusal of the sandbox leaves (and a kernel seldom does:
//! one without IPv6), so that a failed task's
//! output that shows it is known to be the sandbox's network refusal
//! (`swarm`'s hints say so and name `network`). Without the
//! namespace layer, `setsid` and `setpgid` are denied too, so nothing can
//! leave the worker's process group and survive its kill; with it, the
//! worker's PID namespace is what contains it (everything in it dies with
//! the worker's init), so they are allowed: terminal programs (a PTY for
//! each command, as Codex runs its shell) need a session of their own. `clone3` and `openat2` fail with ENOSYS
//! because their flags live in memory a filter cannot read, and libc then
//! falls back to `clone` and `openat`, whose arguments the filter checks.
//!
//! x86-64's x32 system calls (the same numbers with bit 30 set) are
//! denied as a whole, so that no denied call comes in through them.
//!
//! The filter is laid out by [`compile`] as a binary search over call
//! numbers, not as seccompiler's chain of comparisons: the kernel runs a
//! new filter once for every call number when it is installed, and the
//! chain made that most of a worker's filter cost. A test decides a few
//! million calls with both layouts and compares.
//!
//! No call may give a file the set-user-ID or set-group-ID bit (`chmod`
//! and its relatives, `open`/`creat`/`mknod` with such a mode): a copy of
//! a shell made set-user-ID in a worktree would outlive the task on the
//! host and hand its owner's identity to anyone who runs it.

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, sock_filter};

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

/// How a condition compares a system call's argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    /// `arg & mask != 0` (the value is unused): one `jset`, where
    /// seccompiler's `arg & mask == value` takes a rule per bit, and every
    /// instruction of a filter is compiled again in every worker.
    MaskAny(u64),
}

/// One test of one argument: its low 32 bits (`dword`, what a C `int` or
/// `mode_t` argument is) or all 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cond {
    arg: u8,
    dword: bool,
    op: Op,
    value: u64,
}

/// A call matches a rule when every condition holds; a rule with none
/// matches every call.
type Rule = Vec<Cond>;

/// Denied calls by number: a call is denied when any of its rules matches
/// (an empty list: always).
type Rules = BTreeMap<u32, Vec<Rule>>;

fn qword(arg: u8, op: Op, value: u64) -> Cond {
    Cond {
        arg,
        dword: false,
        op,
        value,
    }
}

fn dword(arg: u8, op: Op, value: u64) -> Cond {
    Cond {
        arg,
        dword: true,
        op,
        value,
    }
}

fn nr(call: libc::c_long) -> Result<u32, String> {
    u32::try_from(call).map_err(|e| format!("system call number {call}: {e}"))
}

/// The mode bits no file may be given.
const PRIVILEGE_BITS: u64 = (libc::S_ISUID | libc::S_ISGID) as u64;

/// The rule matching a call whose mode argument `mode` carries a privilege
/// bit; with `flags`, only when that argument asks for a file to be created
/// (`O_CREAT`, or `O_TMPFILE`), since the mode is garbage otherwise.
fn privileged_mode(mode: u8, flags: Option<u8>) -> Vec<Rule> {
    // O_TMPFILE includes O_DIRECTORY; its own bit is the rest.
    let creating = (libc::O_CREAT | (libc::O_TMPFILE & !libc::O_DIRECTORY)) as u64;
    let has_bit = dword(mode, Op::MaskAny(PRIVILEGE_BITS), 0);
    match flags {
        None => vec![vec![has_bit]],
        Some(flags) => vec![vec![dword(flags, Op::MaskAny(creating), 0), has_bit]],
    }
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

/// What a worker may not do: the calls its filter answers EPERM (a socket
/// of a family its network does not give: EAFNOSUPPORT, see [`compile_filter`]).
fn deny_rules(network: Network, contained: bool) -> Result<Rules, String> {
    let mut rules = Rules::new();
    for &call in DENIED {
        rules.insert(nr(call)?, Vec::new());
    }
    if !contained {
        for &call in GROUP_CALLS {
            rules.insert(nr(call)?, Vec::new());
        }
    }
    for &(call, mode, flags) in MODE_SETTERS {
        rules.insert(nr(call)?, privileged_mode(mode, flags));
    }
    let namespaces = NAMESPACE_FLAGS.iter().fold(0, |all, flag| all | flag);
    rules.insert(
        nr(libc::SYS_clone)?,
        vec![vec![qword(0, Op::MaskAny(namespaces), 0)]],
    );
    let tty_rules = [libc::TIOCSTI, libc::TIOCLINUX]
        .iter()
        .map(|&req| vec![dword(1, Op::Eq, req)])
        .collect();
    rules.insert(nr(libc::SYS_ioctl)?, tty_rules);
    let family = |f: i32| dword(0, Op::Ne, f as u64);
    match network {
        Network::None => {
            rules.insert(nr(libc::SYS_socket)?, vec![vec![family(libc::AF_UNIX)]]);
        }
        // IP sockets for the gateway's port (Landlock allows the connect);
        // netlink and packet sockets stay out.
        Network::Gateway { .. } => {
            let other = vec![
                family(libc::AF_UNIX),
                family(libc::AF_INET),
                family(libc::AF_INET6),
            ];
            rules.insert(nr(libc::SYS_socket)?, vec![other]);
        }
        Network::Full => {}
    }
    Ok(rules)
}

/// The `AUDIT_ARCH_*` value of this machine's system calls.
fn audit_arch() -> Result<u32, String> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(0xC000_003E),
        "aarch64" => Ok(0xC000_00B7),
        "riscv64" => Ok(0xC000_00F3),
        other => Err(format!("seccomp filters are not supported on {other}")),
    }
}

/// x86-64's x32 calls are the same numbers with this bit set, under the
/// same architecture value: a filter that only lists numbers would let
/// `ptrace` through as x32's. No worker runs x32 programs.
const X32_BIT: u32 = 0x4000_0000;

// Instruction codes from linux/bpf_common.h.
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// Offsets into `struct seccomp_data`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
const ARGS_OFFSET: u32 = 16;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Offset of the low (`high` false) or high 32 bits of argument `arg`.
fn arg_offset(arg: u8, high: bool) -> u32 {
    let low_first = cfg!(target_endian = "little");
    ARGS_OFFSET + 8 * u32::from(arg) + if high == low_first { 4 } else { 0 }
}

/// A program being laid out: jumps to places not yet known are patched
/// once everything is placed.
struct Builder {
    program: Vec<sock_filter>,
    /// (index of a `ja`, the label it jumps to).
    jumps: Vec<(usize, usize)>,
    /// Where each label landed.
    labels: Vec<Option<usize>>,
}

impl Builder {
    fn push(&mut self, code: u16, jt: u8, jf: u8, k: u32) {
        self.program.push(insn(code, jt, jf, k));
    }

    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn place(&mut self, label: usize) {
        if let Some(slot) = self.labels.get_mut(label) {
            *slot = Some(self.program.len());
        }
    }

    fn jump(&mut self, label: usize) {
        self.jumps.push((self.program.len(), label));
        self.push(JA, 0, 0, 0);
    }

    fn finish(mut self) -> Result<BpfProgram, String> {
        for (at, label) in self.jumps {
            let target = self
                .labels
                .get(label)
                .copied()
                .flatten()
                .ok_or("lay out the seccomp filter: a jump to nowhere")?;
            let offset = target
                .checked_sub(at + 1)
                .and_then(|o| u32::try_from(o).ok())
                .ok_or("lay out the seccomp filter: a backward jump")?;
            if let Some(insn) = self.program.get_mut(at) {
                insn.k = offset;
            }
        }
        Ok(self.program)
    }
}

/// Most calls a leaf of the search compares one after another.
const LEAF: usize = 4;

/// Where a call goes once its number matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Denied whatever its arguments.
    Deny,
    /// The rules at this label decide.
    Body(usize),
}

/// Instructions [`search`] emits for `calls`.
fn search_len(calls: &[(u32, Target)]) -> usize {
    if calls.len() <= LEAF {
        let bodies = calls.iter().filter(|(_, t)| *t != Target::Deny).count();
        let deny = usize::from(calls.iter().any(|(_, t)| *t == Target::Deny));
        // The comparisons, the allowance, the targets.
        calls.len() + 1 + deny + bodies
    } else {
        let (left, right) = calls.split_at(calls.len() / 2);
        let left_len = search_len(left);
        let branch = if left_len <= usize::from(u8::MAX) {
            1
        } else {
            2
        };
        branch + left_len + search_len(right)
    }
}

/// Emits the binary search over `calls` (sorted numbers), down to leaves
/// of up to [`LEAF`] numbers compared in turn: a match goes to its call's
/// target, anything else is allowed. A branch over a left half too long
/// for a conditional jump's 8-bit offset takes a `ja`, whose offset has 32
/// bits, so no jump is ever out of reach.
fn search(b: &mut Builder, calls: &[(u32, Target)], allow: u32, deny: u32) -> Result<(), String> {
    if calls.len() <= LEAF {
        // Comparisons first, then the allowance they fall through to, then
        // one `ret` for the denied numbers and a `ja` per body.
        let bodies: Vec<usize> = calls
            .iter()
            .filter_map(|(_, t)| match t {
                Target::Body(label) => Some(*label),
                Target::Deny => None,
            })
            .collect();
        let has_deny = calls.iter().any(|(_, t)| *t == Target::Deny);
        let mut body = 0usize;
        for (i, (nr, target)) in calls.iter().enumerate() {
            // From comparison i: past the rest and the allowance.
            let to_targets = calls.len() - i;
            let offset = match target {
                Target::Deny => to_targets,
                Target::Body(_) => {
                    body += 1;
                    to_targets + usize::from(has_deny) + body - 1
                }
            };
            let offset = u8::try_from(offset)
                .map_err(|_| "lay out the seccomp filter: a leaf is too long".to_string())?;
            b.push(JEQ_K, offset, 0, *nr);
        }
        b.push(RET_K, 0, 0, allow);
        if has_deny {
            b.push(RET_K, 0, 0, deny);
        }
        for label in bodies {
            b.jump(label);
        }
        return Ok(());
    }
    let (left, right) = calls.split_at(calls.len() / 2);
    let first_right = right.first().map_or(0, |(nr, _)| *nr);
    match u8::try_from(search_len(left)) {
        // nr >= the right half's first: over the left half to the right.
        Ok(over) => {
            b.push(JGE_K, over, 0, first_right);
            search(b, left, allow, deny)?;
        }
        Err(_) => {
            let right_label = b.label();
            b.push(JGE_K, 0, 1, first_right);
            b.jump(right_label);
            search(b, left, allow, deny)?;
            b.place(right_label);
        }
    }
    search(b, right, allow, deny)
}

/// A branch of a rule's block to the block's end, patched once the end
/// is known: (index, whether the `jt` field is it, else `jf`).
type Exit = (usize, bool);

/// Emits the test of one condition: falls through when it holds, and
/// leaves through an [`Exit`] (added to `exits`) when not.
fn condition(out: &mut Vec<sock_filter>, cond: &Cond, exits: &mut Vec<Exit>) {
    let split = |v: u64| ((v >> 32) as u32, v as u32);
    let (vh, vl) = split(cond.value);
    let (mh, ml) = match cond.op {
        Op::MaskAny(mask) => split(mask),
        Op::Eq | Op::Ne => (u32::MAX, u32::MAX),
    };
    // (high half?, mask, value); a half of a qword that the mask clears
    // and the value has none of is no test.
    let mut halves: Vec<(bool, u32, u32)> = [(true, mh, vh), (false, ml, vl)]
        .into_iter()
        .filter(|&(high, mask, value)| !(high && cond.dword) && (mask != 0 || value != 0))
        .collect();
    if halves.is_empty() && matches!(cond.op, Op::MaskAny(_)) {
        // A `MaskAny` of no bit never holds: its `jset 0` always leaves.
        halves.push((false, 0, 0));
    }
    match cond.op {
        Op::Eq => {
            for (high, _, value) in halves {
                out.push(insn(LD_W_ABS, 0, 0, arg_offset(cond.arg, high)));
                exits.push((out.len(), false));
                out.push(insn(JEQ_K, 0, 0, value));
            }
        }
        // Holds when either half differs.
        Op::Ne => {
            let tests: Vec<(bool, u32)> = halves.iter().map(|&(h, _, value)| (h, value)).collect();
            either(out, exits, cond.arg, &tests, JEQ_K, false);
        }
        // Holds when either half has a bit of the mask: the test is the
        // `jset`.
        Op::MaskAny(_) => {
            let tests: Vec<(bool, u32)> = halves.iter().map(|&(h, mask, _)| (h, mask)).collect();
            either(out, exits, cond.arg, &tests, JSET_K, true);
        }
    }
}

/// Emits a condition on argument `arg` that holds when either of its
/// halves' `tests` (the half, and the `k` of a `code` test of it) does: a
/// test holds when its jump is taken (`jset` finding a bit), or, with
/// `taken_holds` false, when it is not (`jeq` finding a half that
/// differs). A half that holds skips the rest (the low half's load and
/// test); the last half's failing leaves through an [`Exit`].
fn either(
    out: &mut Vec<sock_filter>,
    exits: &mut Vec<Exit>,
    arg: u8,
    tests: &[(bool, u32)],
    code: u16,
    taken_holds: bool,
) {
    let last = tests.len().saturating_sub(1);
    for (i, &(high, k)) in tests.iter().enumerate() {
        out.push(insn(LD_W_ABS, 0, 0, arg_offset(arg, high)));
        if i == last {
            exits.push((out.len(), !taken_holds));
            out.push(insn(code, 0, 0, k));
        } else {
            // Over the low half's load and test to what follows.
            let (jt, jf) = if taken_holds { (2, 0) } else { (0, 2) };
            out.push(insn(code, jt, jf, k));
        }
    }
}

/// A filter that answers `errno` to every call `rules` deny and allows the
/// rest, for this machine's architecture (another architecture's calls
/// kill the process). The calls are found by binary search, not one
/// comparison after another: the kernel runs the filter for every call
/// number when it is installed (to learn which calls it always allows),
/// and a chain of comparisons made that cost most of a sandboxed spawn's
/// filter time (~365 µs here for 452 instructions).
///
/// `marked`: calls whose rules answer another errno than `errno` when they
/// match (a call denied outright always answers `errno`).
fn compile(rules: &Rules, errno: u32, marked: &[(u32, u32)]) -> Result<BpfProgram, String> {
    let answer = |errno: u32| libc::SECCOMP_RET_ERRNO | (errno & libc::SECCOMP_RET_DATA);
    let deny = answer(errno);
    let allow = libc::SECCOMP_RET_ALLOW;
    let mut b = Builder {
        program: Vec::new(),
        jumps: Vec::new(),
        labels: Vec::new(),
    };
    b.push(LD_W_ABS, 0, 0, ARCH_OFFSET);
    b.push(JEQ_K, 1, 0, audit_arch()?);
    b.push(RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS);
    b.push(LD_W_ABS, 0, 0, NR_OFFSET);
    if cfg!(target_arch = "x86_64") {
        // x32's numbers only: from bit 30 up to bit 31 (a number past
        // that is no call at all, and the kernel's ENOSYS says so).
        b.push(JGE_K, 0, 2, X32_BIT);
        b.push(JGE_K, 1, 0, X32_BIT << 1);
        b.push(RET_K, 0, 0, deny);
    }
    let mut bodies = Vec::new();
    let calls: Vec<(u32, Target)> = rules
        .iter()
        .map(|(&nr, call_rules)| {
            if call_rules.is_empty() {
                (nr, Target::Deny)
            } else {
                let label = b.label();
                let errno = marked.iter().find(|(call, _)| *call == nr);
                bodies.push((label, call_rules, errno.map_or(deny, |(_, e)| answer(*e))));
                (nr, Target::Body(label))
            }
        })
        .collect();
    search(&mut b, &calls, allow, deny)?;
    for (label, call_rules, deny) in bodies {
        b.place(label);
        for rule in call_rules {
            // The rule's block: its conditions, then the denial; a failed
            // condition skips to the next rule's block.
            let mut exits = Vec::new();
            for cond in rule {
                condition(&mut b.program, cond, &mut exits);
            }
            b.push(RET_K, 0, 0, deny);
            let end = b.program.len();
            for (at, jt) in exits {
                let skip = u8::try_from(end - at - 1)
                    .map_err(|_| "lay out the seccomp filter: a rule is too long".to_string())?;
                if let Some(insn) = b.program.get_mut(at) {
                    if jt { insn.jt = skip } else { insn.jf = skip }
                }
            }
        }
        b.push(RET_K, 0, 0, allow);
    }
    b.finish()
}

/// A worker's filter, compiled once per run and network mode.
/// `contained`: the worker runs in a PID namespace of its own (the
/// namespace layer), so it may make sessions and process groups.
///
/// `clone3` and `openat2` get ENOSYS (so libc falls back to `clone` and
/// `openat`) where everything else gets EPERM: a second filter would cost
/// a second BPF JIT compilation in every worker, so that check is four
/// instructions put in front of the main filter instead. It needs no
/// architecture check of its own: the numbers are `clone3` and `openat2` on
/// every architecture Linux has, and any other architecture's calls are
/// killed by the main filter's own check right after.
pub(crate) fn compile_filter(network: Network, contained: bool) -> Result<BpfProgram, String> {
    let clone3 = nr(libc::SYS_clone3)?;
    let openat2 = nr(libc::SYS_openat2)?;
    let enosys =
        libc::SECCOMP_RET_ERRNO | u32::try_from(libc::ENOSYS).map_err(|e| e.to_string())?;
    let mut program = vec![
        insn(LD_W_ABS, 0, 0, NR_OFFSET),
        insn(JEQ_K, 1, 0, clone3),
        insn(JEQ_K, 0, 1, openat2),
        insn(RET_K, 0, 0, enosys),
    ];
    let eperm = u32::try_from(libc::EPERM).map_err(|e| e.to_string())?;
    let no_family = u32::try_from(libc::EAFNOSUPPORT).map_err(|e| e.to_string())?;
    let marked = [(nr(libc::SYS_socket)?, no_family)];
    program.extend(compile(&deny_rules(network, contained)?, eperm, &marked)?);
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
    use seccompiler::{
        SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    };

    /// A classic BPF interpreter for what seccomp filters use: runs
    /// `program` on a call's `seccomp_data`, returns the verdict.
    fn run(program: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        steps(program, arch, nr, Some(args)).0
    }

    /// [`run`], also counting the instructions run; without `args`, stops
    /// (verdict 0) at the first load of an argument, as the kernel's own
    /// run of a new filter over every call number does.
    fn steps(program: &[sock_filter], arch: u32, nr: u32, args: Option<[u64; 6]>) -> (u32, usize) {
        let mut count = 0;
        let word = |offset: u32| -> Option<u32> {
            match offset {
                0 => Some(nr),
                4 => Some(arch),
                o if (16..64).contains(&o) => {
                    let args = args?;
                    let arg = args[((o - 16) / 8) as usize];
                    let high = (o - 16) % 8 == 4;
                    Some(if high { (arg >> 32) as u32 } else { arg as u32 })
                }
                o => panic!("load from offset {o}"),
            }
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = &program[pc];
            count += 1;
            let (jt, jf) = (usize::from(i.jt), usize::from(i.jf));
            let branch = |taken: bool| pc + 1 + if taken { jt } else { jf };
            pc = match i.code {
                0x20 => match word(i.k) {
                    Some(w) => {
                        acc = w;
                        pc + 1
                    }
                    None => return (0, count),
                },
                0x54 => {
                    acc &= i.k;
                    pc + 1
                }
                0x05 => pc + 1 + i.k as usize,
                0x15 => branch(acc == i.k),
                0x25 => branch(acc > i.k),
                0x35 => branch(acc >= i.k),
                0x45 => branch(acc & i.k != 0),
                0x06 => return (i.k, count),
                code => panic!("instruction {code:#x} at {pc}"),
            };
        }
    }

    /// One rule of `MaskAny` conditions as the rules of single bits
    /// seccompiler can express (`arg & bit == bit`), one rule for each
    /// choice of a bit per condition: (condition, its bit if `MaskAny`).
    fn bitwise(rule: &Rule) -> Vec<Vec<(Cond, Option<u64>)>> {
        let mut out: Vec<Vec<(Cond, Option<u64>)>> = vec![Vec::new()];
        for cond in rule {
            let choices: Vec<Option<u64>> = match cond.op {
                Op::MaskAny(mask) => (0..64)
                    .map(|b| 1u64 << b)
                    .filter(|bit| mask & bit != 0)
                    .map(Some)
                    .collect(),
                Op::Eq | Op::Ne => vec![None],
            };
            out = out
                .iter()
                .flat_map(|prefix| {
                    choices.iter().map(move |&bit| {
                        let mut rule = prefix.clone();
                        rule.push((*cond, bit));
                        rule
                    })
                })
                .collect();
        }
        out
    }

    /// The same rules compiled by seccompiler, whose filter lists calls one
    /// after another: the oracle the search tree is checked against.
    fn oracle(rules: &Rules) -> BpfProgram {
        let rules = rules
            .iter()
            .map(|(&nr, call_rules)| {
                let call_rules = call_rules
                    .iter()
                    .flat_map(bitwise)
                    .map(|rule| {
                        let conds = rule
                            .iter()
                            .map(|&(c, bit)| {
                                let len = if c.dword {
                                    SeccompCmpArgLen::Dword
                                } else {
                                    SeccompCmpArgLen::Qword
                                };
                                let (op, value) = match (c.op, bit) {
                                    (Op::Eq, _) => (SeccompCmpOp::Eq, c.value),
                                    (Op::Ne, _) => (SeccompCmpOp::Ne, c.value),
                                    (Op::MaskAny(_), Some(bit)) => {
                                        (SeccompCmpOp::MaskedEq(bit), bit)
                                    }
                                    (Op::MaskAny(_), None) => unreachable!("a bit each"),
                                };
                                SeccompCondition::new(c.arg, len, op, value).unwrap()
                            })
                            .collect();
                        SeccompRule::new(conds).unwrap()
                    })
                    .collect::<Vec<_>>();
                (i64::from(nr), call_rules)
            })
            .collect();
        let arch = std::env::consts::ARCH.try_into().unwrap();
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM as u32),
            arch,
        )
        .unwrap();
        filter.try_into().unwrap()
    }

    /// Values worth trying for an argument that `rules` test: each tested
    /// value, with bits flipped, in the other half, and some noise.
    fn interesting(rules: &[Rule], arg: u8, seed: &mut u64) -> Vec<u64> {
        let mut out = vec![0, u64::MAX, 0xFFFF_FFFF, 0xFFFF_FFFF_0000_0000];
        for cond in rules.iter().flatten().filter(|c| c.arg == arg) {
            if let Op::MaskAny(mask) = cond.op {
                // Each bit alone, all of them, none of them.
                let bits = (0..64).map(|b| 1u64 << b).filter(|bit| mask & bit != 0);
                out.extend(bits);
                out.extend([mask, !mask]);
                continue;
            }
            let v = cond.value;
            out.extend([v, v ^ 1, v ^ (1 << 40), v | (1 << 33), v << 32, !v]);
        }
        for _ in 0..4 {
            // xorshift: deterministic noise.
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            out.push(*seed);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    #[test]
    fn the_search_tree_decides_every_call_as_seccompilers_chain_does() {
        let arch = audit_arch().unwrap();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut checked = 0u64;
        let mut sets = Vec::new();
        for network in [
            Network::None,
            Network::Full,
            Network::Gateway {
                ports: crate::policy::GatewayPorts::one(0),
            },
        ] {
            for contained in [true, false] {
                sets.push((
                    format!("{network:?}, contained {contained}"),
                    deny_rules(network, contained).unwrap(),
                ));
            }
        }
        // Every kind of condition, including those no rule uses today.
        let mut every = deny_rules(Network::None, true).unwrap();
        every.insert(600, vec![vec![qword(0, Op::Ne, 0x1_0000_0002)]]);
        every.insert(
            601,
            vec![
                vec![qword(1, Op::Eq, 0xFFFF_0000_0000_0001)],
                vec![dword(2, Op::MaskAny(0xF0), 0)],
            ],
        );
        every.insert(
            602,
            vec![vec![
                qword(0, Op::MaskAny(0x0100_0000_0000_0012), 0),
                dword(1, Op::Ne, 5),
                qword(2, Op::MaskAny(0x8000_0001), 0),
            ]],
        );
        every.insert(603, Vec::new());
        every.insert(
            604,
            vec![
                vec![qword(0, Op::MaskAny(0x0000_0100_0000_0003), 0)],
                vec![
                    qword(1, Op::MaskAny(0x8000_0000_0000_0000), 0),
                    dword(2, Op::MaskAny(0x50), 0),
                ],
            ],
        );
        sets.push(("every kind of condition".into(), every));
        // So many numbers that a half of the search is too long for a
        // conditional jump, which then goes through a `ja`.
        let mut many = Rules::new();
        for nr in 700..1000u32 {
            let rules = match nr % 3 {
                0 => Vec::new(),
                1 => vec![vec![dword(0, Op::Eq, u64::from(nr))]],
                _ => vec![
                    vec![qword(1, Op::MaskAny(0x30), 0)],
                    vec![dword(2, Op::Ne, 3)],
                ],
            };
            many.insert(nr, rules);
        }
        sets.push(("three hundred numbers".into(), many));
        for (name, rules) in sets {
            {
                let ours = compile(&rules, libc::EPERM as u32, &[]).unwrap();
                let theirs = oracle(&rules);
                let none: &[Rule] = &[];
                for nr in (0..620u32).chain(690..1010) {
                    let call_rules = rules.get(&nr).map_or(none, Vec::as_slice);
                    let values: Vec<Vec<u64>> = (0..3u8)
                        .map(|arg| interesting(call_rules, arg, &mut seed))
                        .collect();
                    for &a in &values[0] {
                        for &b in &values[1] {
                            for &c in &values[2] {
                                let args = [a, b, c, a ^ b, 7, 0];
                                assert_eq!(
                                    run(&ours, arch, nr, args),
                                    run(&theirs, arch, nr, args),
                                    "call {nr} with {args:x?} ({name})"
                                );
                                checked += 1;
                            }
                        }
                    }
                }
                // Another architecture is killed by both.
                let other = arch ^ 0x1;
                assert_eq!(run(&ours, other, 0, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS);
                assert_eq!(
                    run(&theirs, other, 0, [0; 6]),
                    libc::SECCOMP_RET_KILL_PROCESS
                );
            }
        }
        assert!(checked > 100_000, "only {checked} calls checked");
    }

    #[test]
    fn denied_calls_are_denied_and_x32_numbers_too() {
        let arch = audit_arch().unwrap();
        let filter = compile_filter(Network::None, true).unwrap();
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        for &call in DENIED {
            assert_eq!(
                run(&filter, arch, nr(call).unwrap(), [0; 6]),
                eperm,
                "{call}"
            );
        }
        assert_eq!(
            run(&filter, arch, nr(libc::SYS_clone3).unwrap(), [0; 6]),
            enosys
        );
        assert_eq!(
            run(&filter, arch, nr(libc::SYS_read).unwrap(), [0; 6]),
            libc::SECCOMP_RET_ALLOW
        );
        // A network socket without network: the mark hints read.
        let inet = [libc::AF_INET as u64, 0, 0, 0, 0, 0];
        let no_family = libc::SECCOMP_RET_ERRNO | libc::EAFNOSUPPORT as u32;
        assert_eq!(
            run(&filter, arch, nr(libc::SYS_socket).unwrap(), inet),
            no_family
        );
        let unix = [libc::AF_UNIX as u64, 0, 0, 0, 0, 0];
        assert_eq!(
            run(&filter, arch, nr(libc::SYS_socket).unwrap(), unix),
            libc::SECCOMP_RET_ALLOW
        );
        // With the gateway's IP sockets, a netlink one gets the mark too.
        let gateway = compile_filter(
            Network::Gateway {
                ports: crate::policy::GatewayPorts::one(0),
            },
            true,
        )
        .unwrap();
        let netlink = [libc::AF_NETLINK as u64, 0, 0, 0, 0, 0];
        assert_eq!(
            run(&gateway, arch, nr(libc::SYS_socket).unwrap(), netlink),
            no_family
        );
        assert_eq!(
            run(&gateway, arch, nr(libc::SYS_socket).unwrap(), inet),
            libc::SECCOMP_RET_ALLOW
        );
        let new_user = [libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0];
        assert_eq!(
            run(&filter, arch, nr(libc::SYS_clone).unwrap(), new_user),
            eperm
        );
        if cfg!(target_arch = "x86_64") {
            let x32_ptrace = X32_BIT | 521;
            assert_eq!(run(&filter, arch, x32_ptrace, [0; 6]), eperm);
            // No call at all (`syscall(-1)`): the kernel's ENOSYS.
            assert_eq!(
                run(&filter, arch, u32::MAX, [0; 6]),
                libc::SECCOMP_RET_ALLOW
            );
        }
    }

    #[test]
    fn the_filter_is_short_to_run_for_every_call() {
        // What the kernel pays when it installs the filter: one run per
        // call number. A chain of comparisons took over 100 instructions.
        let filter = compile_filter(
            Network::Gateway {
                ports: crate::policy::GatewayPorts::one(0),
            },
            false,
        )
        .unwrap();
        let arch = audit_arch().unwrap();
        let longest = (0..460u32)
            .map(|nr| steps(&filter, arch, nr, None).1)
            .max()
            .unwrap();
        assert!(longest <= 30, "a call number takes {longest} instructions");
    }
    #[test]
    fn filters_compile_for_this_machine() {
        let none = compile_filter(Network::None, true).unwrap();
        let full = compile_filter(Network::Full, true).unwrap();
        let gateway = compile_filter(
            Network::Gateway {
                ports: crate::policy::GatewayPorts::one(0),
            },
            true,
        )
        .unwrap();
        let baseline = compile_filter(Network::None, false).unwrap();
        assert!(baseline.len() > none.len());
        // Every worker's kernel converts and compiles each instruction
        // again (277 before `jset` took a condition per bit's place).
        assert!(baseline.len() < 200, "{} instructions", baseline.len());
        // The socket rule is the only difference.
        assert!(none.len() > full.len());
        assert!(gateway.len() > full.len());
        assert_eq!(none[..4], full[..4]);
    }
}
