//! What this machine supports for sandboxing, as `swarm doctor` finds it:
//! the kernel's Landlock and seccomp, cgroups, whether the namespace layer
//! starts (only known by trying it: sysctls do not show an AppArmor or
//! container policy that refuses it), git, wasmtime, and, when sandboxed
//! runs can start, the toolchains and agent CLIs of the host.

#![allow(clippy::disallowed_methods, reason = "/proc, the kernel's")]

use swarm_sandbox::probe::Support;

use super::agents::Installed;
use super::toolchains::Toolchain;
use super::{HostEnv, start_launcher};

/// What `swarm doctor` found.
#[derive(Debug)]
pub struct Machine {
    /// The kernel's release, trimmed.
    pub kernel: String,
    pub support: Support,
    /// The Landlock ABI swarm needs.
    pub required_abi: i64,
    /// Which cgroups tasks get (`"v2"`, `"v1"`), if any.
    pub cgroups: Option<&'static str>,
    /// Whether sandboxed runs start: `Ok(None)` with the namespace layer,
    /// `Ok(Some(why))` without it, `Err(why)` refused.
    pub launcher: Result<Option<String>, String>,
    /// `git --version`, or why it is not there.
    pub git: String,
    /// Whether WASM tasks run, or why not (a fragment after "failed to").
    pub wasm: Result<(), String>,
    /// The identity sandboxed tasks run as when swarm runs as root.
    pub identity: Option<(u32, u32)>,
    /// swarm's own user id.
    pub euid: u32,
    /// The host's toolchains (when sandboxed runs start).
    pub toolchains: Vec<Toolchain>,
    /// The agent CLIs on the host's PATH (when sandboxed runs start).
    pub agents: Vec<Installed>,
    /// How a kept `[setup]` reaches a sandboxed worktree: `Ok(())` shown
    /// as an overlay, `Err(why)` copied (a fragment after "failed to").
    pub setups: Result<(), String>,
    /// As root (tasks run as nobody): files of the toolchains' grants
    /// that nobody may read, which fail a task with `Permission denied`.
    pub unreadable: Vec<Unreadable>,
}

/// Files under one granted directory the sandbox's user may not read.
#[derive(Debug)]
pub struct Unreadable {
    pub dir: std::path::PathBuf,
    /// How many (files and directories), of those looked at.
    pub count: usize,
    /// The first few.
    pub examples: Vec<std::path::PathBuf>,
    /// Whether the walk stopped before its end ([`UNREADABLE_WALK`]).
    pub partial: bool,
}

/// Most entries looked at per granted directory.
const UNREADABLE_WALK: usize = 200_000;

/// The entries under `dirs` that a user other than their owner, in none of
/// their groups, may not read (a file without `o+r`, a directory without
/// `o+rx`): what tasks running as nobody meet as `Permission denied` (a
/// crate unpacked `0640` in cargo's registry). No link is followed.
pub fn unreadable_to_tasks(dirs: &[std::path::PathBuf]) -> Vec<Unreadable> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut found = Vec::new();
    for dir in dirs {
        let (mut count, mut examples, mut seen) = (0usize, Vec::new(), 0usize);
        let mut stack = vec![dir.clone()];
        let mut partial = false;
        while let Some(at) = stack.pop() {
            #[allow(
                clippy::disallowed_methods,
                reason = "the host's toolchain directories, listed for doctor"
            )]
            let Ok(entries) = std::fs::read_dir(&at) else {
                continue;
            };
            for entry in entries.flatten() {
                seen += 1;
                if seen > UNREADABLE_WALK {
                    partial = true;
                    break;
                }
                let Ok(meta) = entry.metadata() else { continue };
                let mode = meta.permissions().mode();
                let closed = match meta.is_dir() {
                    true => mode & 0o005 != 0o005,
                    false => meta.is_file() && mode & 0o004 == 0,
                };
                if closed {
                    count += 1;
                    if examples.len() < 3 {
                        examples.push(entry.path());
                    }
                } else if meta.is_dir() {
                    stack.push(entry.path());
                }
            }
            if partial {
                break;
            }
        }
        if count > 0 {
            found.push(Unreadable {
                dir: dir.clone(),
                count,
                examples,
                partial,
            });
        }
    }
    found
}

/// Probes this machine, starting `host`'s launcher as a run would (on a
/// runtime of its own: not to be called from inside one); `scratch`, a
/// directory made and removed here (its parent must exist), is where an
/// overlay is shown to a command.
pub fn probe(host: &HostEnv, scratch: &std::path::Path) -> Machine {
    let support = swarm_sandbox::probe::probe();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let git = std::process::Command::new("git")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("not found ({e})"));
    let mut setups = Err("start a sandboxed run".to_string());
    let launcher = support.require().and_then(|()| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(async {
                let launcher = start_launcher(host).await?;
                if launcher.degraded().is_none() {
                    setups = crate::run::probe_layers(&launcher, scratch).await;
                    if let Err(e) = crate::untrusted::TaskDir::discard(scratch) {
                        tracing::warn!(error = %e, "failed to remove the overlay probe's directory");
                    }
                } else {
                    setups = Err("show an overlay without the namespace layer".into());
                }
                Ok(launcher.degraded().map(str::to_string))
            })
            .map_err(|e: super::LauncherError| crate::error_chain(&e))
    });
    let wasm = swarm_worker::wasm::WasmEngine::new(&swarm_worker::wasm::EngineOptions {
        cache_dir: None,
        concurrency: 1,
        fuel: false,
    })
    .and_then(|engine| engine.self_check())
    .map_err(|e| e.to_string());
    let (toolchains, agents) = match launcher {
        Ok(_) => (
            super::toolchains::detect(host, &crate::plan::Toolchains::All),
            super::agents::installed(host),
        ),
        Err(_) => (Vec::new(), Vec::new()),
    };
    // Only as root do tasks run as another user.
    let unreadable = match swarm_sandbox::worker_identity() {
        Some(_) => {
            let dirs: Vec<std::path::PathBuf> =
                toolchains.iter().flat_map(|t| t.grants.clone()).collect();
            unreadable_to_tasks(&dirs)
        }
        None => Vec::new(),
    };
    Machine {
        kernel: kernel.trim().to_string(),
        support,
        required_abi: swarm_sandbox::probe::required_abi(),
        cgroups: crate::run::cgroup_support(),
        launcher,
        git,
        wasm,
        identity: swarm_sandbox::worker_identity(),
        euid: nix::unistd::geteuid().as_raw(),
        toolchains,
        agents,
        setups,
        unreadable,
    }
}

/// What asking a model one of `swarm doctor --model`'s questions found.
#[derive(Debug)]
pub enum Finding {
    /// Whether it answers at all: in `secs`, with the tokens counted and
    /// its text; or why not (a fragment after "failed to").
    Answers(Result<Answered, String>),
    /// Whether its answer held to a JSON schema, with its text; or why it
    /// did not answer.
    Schema(Result<(bool, String), String>),
    /// Whether, given a tool, it called it, with its text; or why it did
    /// not answer.
    Tools(Result<(bool, String), String>),
}

/// A model's answer to the first question.
#[derive(Debug)]
pub struct Answered {
    pub secs: f64,
    pub read: u64,
    pub written: u64,
    pub text: String,
}

/// Asks model `name` through `gateway` whether it answers, holds an
/// answer to a JSON schema (`swarm plan`, `output_schema`) and calls a
/// tool when given one (swarm's agent works through tool calls), each its
/// own call, telling `found` each finding as it comes; the last two only
/// if it answered the first. Whether it answered.
pub async fn ask_model(
    gateway: &crate::gateway::Gateway,
    name: &str,
    found: &mut dyn FnMut(Finding),
) -> bool {
    use crate::gateway::{AnswerFormat, CompletionRequest};
    use serde_json::{Value, json};
    use swarm_protocol::agent::{Block, Message, Role, ToolSpec};
    let ask = |text: &str| CompletionRequest {
        model: name.to_string(),
        system: "You are checked by swarm doctor. Answer briefly.".into(),
        messages: vec![Message {
            role: Role::User,
            content: vec![Block::Text { text: text.into() }],
        }],
        max_tokens: Some(64),
        label: "doctor".into(),
        ..CompletionRequest::default()
    };
    let started = std::time::Instant::now();
    let answered = gateway
        .complete(&ask("Say ok."))
        .await
        .map(|answer| Answered {
            secs: started.elapsed().as_secs_f64(),
            read: answer.usage.input_tokens,
            written: answer.usage.output_tokens,
            text: answer.text,
        })
        .map_err(|e| e.to_string());
    let ok = answered.is_ok();
    found(Finding::Answers(answered));
    if !ok {
        return false;
    }

    let mut structured = ask("Is the sky blue? Answer in the JSON form asked for.");
    structured.format = Some(AnswerFormat {
        name: "check".into(),
        schema: json!({
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
            "additionalProperties": false
        }),
    });
    let held = |text: &str| {
        serde_json::from_str::<Value>(text.trim())
            .is_ok_and(|v| v.get("ok").is_some_and(Value::is_boolean))
    };
    let schema = gateway.complete(&structured).await;
    found(Finding::Schema(
        schema
            .map(|answer| (held(&answer.text), answer.text))
            .map_err(|e| e.to_string()),
    ));

    let mut tooled = ask("Call the `report` tool with value \"ok\".");
    tooled.tools = vec![ToolSpec {
        name: "report".into(),
        description: "Reports a value.".into(),
        input_schema: json!({
            "type": "object",
            "properties": {"value": {"type": "string"}},
            "required": ["value"]
        }),
    }];
    let tools = gateway.complete(&tooled).await;
    found(Finding::Tools(
        tools
            .map(|answer| (!answer.tool_calls.is_empty(), answer.text))
            .map_err(|e| e.to_string()),
    ));
    true
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// A crate unpacked `0640` (as a root-owned registry can hold) and a
    /// directory closed to others are what tasks running as nobody cannot
    /// read; a readable file, and what is under a closed directory (it is
    /// counted once, as the directory), are not counted.
    #[test]
    fn files_and_directories_others_may_not_read_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("registry");
        std::fs::create_dir_all(root.join("open/src")).unwrap();
        std::fs::create_dir_all(root.join("closed/deep")).unwrap();
        let file = |p: &std::path::Path, mode: u32| {
            std::fs::write(p, "x").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        file(&root.join("open/src/lib.rs"), 0o644);
        file(&root.join("open/src/secret.rs"), 0o640);
        file(&root.join("closed/deep/x.rs"), 0o644);
        std::fs::set_permissions(root.join("closed"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let found = unreadable_to_tasks(std::slice::from_ref(&root));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].count, 2, "{found:?}");
        let mut named = found[0].examples.clone();
        named.sort();
        assert_eq!(
            named,
            vec![root.join("closed"), root.join("open/src/secret.rs")]
        );
        assert!(!found[0].partial);
    }
}
