//! `swarm doctor` for people: what this machine supports for sandboxing
//! (see `assemble::doctor`) and what swarm enforces for every sandboxed
//! task, or why sandboxed runs are refused here; and what a model
//! answered to `swarm doctor --model`'s questions.

use std::fmt::Write as _;

use crate::assemble::doctor::{Finding, Machine};

/// What sandboxed tasks get, said when they can run.
const ENFORCED: &str = "  files      write only in the task's worktree, private tmp (also HOME, TMPDIR) and build caches;
             in the worktree, only its `paths` and `creates` when it names them
             read the system directories, a view of the repository's .git (objects,
             no config, no refs), nothing else of it; no set-user-ID files
             (namespace layer) a root file system of these paths only: no host sockets;
             all else read-only, metadata included, every mount nosuid
";

const ISOLATED: &str = "  network    none: no TCP (Landlock), no sockets but Unix ones (seccomp);
             an agent CLI's task: TCP to one port on a loopback of its own (the gateway), nothing else;
             a task with a list of hosts: TCP to swarm's egress proxy there, which lets through those hosts only
  processes  no signals or ptrace out of the sandbox, no namespaces, io_uring, bpf,
             keyrings, mounts, TIOCSTI; no capabilities, no_new_privs; rlimits
  env        only PATH, locale, TERM, TZ and the task's own variables
";

/// The whole of `swarm doctor`'s answer about `m`.
pub fn machine(m: &Machine) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut text = format!("kernel            {}\n", m.kernel);
    match m.support.landlock_abi {
        Some(abi) => writeln!(
            text,
            "landlock          ABI {abi} (swarm needs {})",
            m.required_abi
        ),
        None => writeln!(
            text,
            "landlock          unavailable: {}",
            m.support.landlock_error.as_deref().unwrap_or("unknown")
        ),
    }
    .ok();
    writeln!(text, "seccomp           {}", yes(m.support.seccomp)).ok();
    match m.cgroups {
        Some(version) => writeln!(
            text,
            "cgroups           {version}: a task's `memory` and `processes` limit all of its processes together"
        ),
        None => writeln!(
            text,
            "cgroups           unavailable: `memory` limits each process's address space, `processes` through the PID namespace"
        ),
    }
    .ok();
    match &m.launcher {
        Ok(None) => writeln!(
            text,
            "namespaces        yes: user, mount, PID and network namespaces per task (namespace layer on)"
        ),
        Ok(Some(why)) => writeln!(
            text,
            "namespaces        no ({why}): Landlock + seccomp baseline only (chmod/utime/xattr outside the worktree not blocked)"
        ),
        Err(_) => writeln!(text, "namespaces        not tried"),
    }
    .ok();
    match &m.setups {
        Ok(()) => writeln!(
            text,
            "setup outputs     shown to each worktree as an overlay: a kept setup's ignored directories (node_modules, .venv), the task's changes its own; the rest copied"
        ),
        Err(why) => writeln!(
            text,
            "setup outputs     copied into each worktree (extents shared where the file system can: Btrfs, XFS): overlays failed to {why}"
        ),
    }
    .ok();
    writeln!(text, "git               {}", m.git).ok();
    match &m.wasm {
        Ok(()) => writeln!(
            text,
            "wasmtime          {}: WASM tasks run (WASI preview 1 modules, preview 2 command components)",
            swarm_worker::wasm::WASMTIME
        ),
        Err(e) => writeln!(text, "wasmtime          WASM tasks cannot run: failed to {e}"),
    }
    .ok();
    if let Err(why) = &m.launcher {
        writeln!(
            text,
            "\nsandboxed runs are REFUSED on this machine: {why}\nonly `sandbox = \"none\"` (no confinement at all) can run here"
        )
        .ok();
        return text;
    }
    text.push_str("\nswarm enforces, for every sandboxed task:\n");
    text.push_str(ENFORCED);
    match m.identity {
        Some((uid, gid)) => writeln!(
            text,
            "  identity   uid {uid}, gid {gid} (nobody), no supplementary groups: swarm runs as root"
        ),
        None => writeln!(
            text,
            "  identity   your own user (uid {}), no capabilities",
            m.euid
        ),
    }
    .ok();
    text.push_str(ISOLATED);
    text.push_str("\ntoolchains of this environment, granted to sandboxed tasks unless a plan's `toolchains` says otherwise:\n");
    text.push_str(&super::summary::grants(&[], &m.toolchains, None));
    // What the sandbox's user may not read there fails tasks with
    // `Permission denied`: said, never changed (making it readable would
    // show it to every user of the machine, not only to tasks).
    for u in &m.unreadable {
        writeln!(
            text,
            "  unreadable to tasks: {}{} under {} (e.g. {}): tasks run as nobody and fail reading them; `chmod -R o+rX {}` makes them readable to every user, if that is fine",
            u.count,
            if u.partial { "+" } else { "" },
            u.dir.display(),
            u.examples
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            u.dir.display()
        )
        .ok();
    }
    text.push_str("\nagent CLIs on PATH (`agent = \"claude-code\"` / `\"codex\"`; each runs sandboxed, its key kept out):\n");
    for cli in &m.agents {
        match &cli.found {
            Some((path, version)) => writeln!(
                text,
                "  {:<12} {version} ({})",
                cli.kind.name(),
                path.display()
            ),
            None => writeln!(
                text,
                "  {:<12} not found (`{}` is not on PATH)",
                cli.kind.name(),
                cli.name
            ),
        }
        .ok();
    }
    text
}

/// The line of one finding about model `name`.
pub fn finding(name: &str, finding: &Finding) -> String {
    match finding {
        Finding::Answers(Ok(a)) => format!(
            "answers           yes, in {:.2}s: {} tokens read, {} written ({})",
            a.secs,
            a.read,
            a.written,
            quoted(&a.text)
        ),
        Finding::Answers(Err(e)) => format!("answers           no: failed to {e}"),
        Finding::Schema(Ok((true, _))) => {
            "JSON schema       yes: the answer held to its schema (`swarm plan`, `output_schema`)"
                .into()
        }
        Finding::Schema(Ok((false, text))) => format!(
            "JSON schema       no: asked for a schema, it answered {} (`swarm plan` will need repair rounds; `output_schema` answers may be refused)",
            quoted(text)
        ),
        Finding::Schema(Err(e)) => format!("JSON schema       no: failed to {e}"),
        Finding::Tools(Ok((true, _))) => {
            "tool calls        yes: it called `report` (swarm's agent can work with it)".into()
        }
        Finding::Tools(Ok((false, text))) => format!(
            "tool calls        no: given a tool, it answered in text ({}); swarm's agent works through tool calls: try `tool_choice = \"required\"` in [models.{name}], or `tool_choice = \"schema\"` for a server that holds answers to a JSON schema (llama.cpp's llama-server)",
            quoted(text)
        ),
        Finding::Tools(Err(e)) => format!("tool calls        no: failed to {e}"),
    }
}

/// `text` on one line, cut to 60 characters, in quotes.
fn quoted(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = flat.chars().take(60).collect();
    if cut.len() < flat.len() {
        format!("\"{cut}...\"")
    } else {
        format!("\"{cut}\"")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_quoted_answer_is_one_line_of_at_most_60_characters() {
        assert_eq!(super::quoted(" ok\n fine "), "\"ok fine\"");
        let long = "word ".repeat(20);
        assert_eq!(super::quoted(&long), format!("\"{}...\"", &long[..60]));
    }
}
