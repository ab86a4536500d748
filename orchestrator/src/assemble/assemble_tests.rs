//! A run put together from code, as a test or another front end would:
//! a plan, an injected `HostEnv`, no code of the binary and nothing of
//! this process's own environment.

use std::time::Duration;

use swarm_protocol::TaskStatus;

use super::{HostEnv, Models, Overrides, SetupError, assemble};
use crate::git::refs;
use crate::plan;

fn host() -> HostEnv {
    let mut host = HostEnv::new([
        ("PATH".to_string(), "/usr/bin:/bin".to_string()),
        ("HOME".to_string(), "/nonexistent".to_string()),
    ]);
    host.cpus = 2;
    host
}

#[test]
fn a_plan_runs_from_code_with_an_injected_host() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _) = crate::git::test_repo::with_files(dir.path(), &[("README", "hi\n")]);
    let text = r#"
[swarm]
sandbox = "none"

[[task]]
id = "a"
run = "echo a > a.txt"

[[task]]
id = "b"
run = "echo b > b.txt"
paths = ["b.txt"]
deps = ["a"]
"#;
    let plan_path = repo.workdir.join("plan.toml");
    let plan = plan::parse(&plan_path, text.to_string()).unwrap();
    let overrides = Overrides {
        worktrees: Some(dir.path().join("worktrees")),
        name: Some("from-code".into()),
        grace: Duration::from_secs(1),
        ..Overrides::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async {
        let assembly = assemble(&plan, "plan.toml", &host(), &overrides, Models::Own)
            .await
            .unwrap();
        // The host's CPUs, not this machine's.
        assert_eq!(assembly.options.concurrency, 2);
        assert!(assembly.options.sandbox.is_none());
        assert!(assembly.options.gateway.is_none());
        let prepared = crate::run::prepare(repo.clone(), plan, assembly.options).unwrap();
        let (_stop_tx, stop) = tokio::sync::watch::channel(None);
        crate::run::execute(prepared, &mut |_| {}, stop)
            .await
            .unwrap()
    });
    let statuses: Vec<_> = report
        .tasks
        .iter()
        .map(|t| (t.id.as_str(), t.status))
        .collect();
    assert_eq!(
        statuses,
        [("a", TaskStatus::Merged), ("b", TaskStatus::Merged)]
    );
    repo.resolve(&refs::integration("from-code")).unwrap();
    let shown = std::process::Command::new("git")
        .arg("-C")
        .arg(&repo.workdir)
        .args(["show", "swarm/from-code:b.txt", "swarm/from-code:a.txt"])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&shown.stdout), "b\na\n");
}

#[tokio::test]
async fn keys_and_the_swarm_binary_come_from_the_host_given() {
    // A model key the host does not have is a plan error at the model,
    // whatever this process's environment holds.
    let text = r#"
[models.default]
provider = "anthropic"
model = "m"
api_key_env = "SWARM_TEST_KEY_THE_HOST_LACKS"

[[task]]
id = "a"
prompt = "do it"
"#;
    let plan = plan::parse(std::path::Path::new("p.toml"), text.to_string()).unwrap();
    let overrides = Overrides::default();
    match assemble(&plan, "p.toml", &host(), &overrides, Models::Own).await {
        Err(SetupError::Plan(e)) => assert!(
            e.message.contains(
                "reads its API key from $SWARM_TEST_KEY_THE_HOST_LACKS, which is not set"
            ),
            "{}",
            e.message
        ),
        other => panic!("{other:?}"),
    }
    // Given the key, agent tasks need the `swarm` binary, which this host
    // does not name.
    let mut keyed = host();
    keyed
        .vars
        .insert("SWARM_TEST_KEY_THE_HOST_LACKS".into(), "k".into());
    let err = assemble(&plan, "p.toml", &keyed, &overrides, Models::Own)
        .await
        .unwrap_err();
    assert!(matches!(err, SetupError::NoProgram { .. }), "{err:?}");
    assert!(!err.is_invalid_input());
    // A sandboxed plan on a host without the binary fails closed.
    let sandboxed = plan::parse(
        std::path::Path::new("p.toml"),
        "[[task]]\nid = \"a\"\nrun = \"true\"\n".into(),
    )
    .unwrap();
    let err = assemble(&sandboxed, "p.toml", &host(), &overrides, Models::Own)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SetupError::NoSandbox { .. }) && err.is_invalid_input(),
        "{err:?}"
    );
    assert!(err.to_string().contains("--sandbox none"), "{err}");
}

#[test]
fn an_mcp_program_in_a_directory_of_its_own_is_found_and_one_beside_a_home_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("prefix/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let server = bin.join("server");
    std::fs::write(&server, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&server, std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = format!(
        "[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\napi_key_env = \"K\"\n\n[mcp.files]\ncommand = [\"{}\"]\n\n[[task]]\nid = \"a\"\nprompt = \"Do it.\"\nmcp = [\"files\"]\n",
        server.display()
    );
    let plan = plan::parse(&dir.path().join("plan.toml"), text).unwrap();
    // Below the temporary directory (where a checkout may live) is fine:
    // the sandbox shows only the grant of it.
    let found = super::mcp_programs(&plan, &host()).unwrap();
    assert_eq!(found["files"].grant, bin);
    // The same program where its directory holds the home is not.
    let mut home_below = host();
    home_below.home = Some(bin.join("ann"));
    let Err(SetupError::Plan(error)) = super::mcp_programs(&plan, &home_below) else {
        panic!("a grant holding the home was accepted");
    };
    assert!(
        error
            .to_string()
            .contains("which the sandbox would show whole"),
        "{error}"
    );
}

/// `check` is the part of `assemble` that can refuse a plan on a host:
/// what one refuses, the other refuses with the same words, so
/// `swarm validate` (which is `check`) never passes a plan `swarm run`
/// refuses before it starts.
#[test]
fn check_refuses_what_assemble_refuses_with_the_same_error() {
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("plan.toml");
    let bad: &[(&str, Overrides)] = &[
        (
            "[swarm]\nsandbox = \"none\"\nread_paths = [\"/nonexistent/swarm-check\"]\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n",
            Overrides::default(),
        ),
        (
            "[swarm]\nsandbox = \"none\"\n\n[[task]]\nid = \"a\"\nwasm = \"missing.wasm\"\n",
            Overrides::default(),
        ),
        (
            "[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\napi_key_env = \"\"\nbase_url = \"http://127.0.0.1:9\"\n\n[swarm]\nsandbox = \"none\"\n\n[agents.claude]\nkind = \"claude-code\"\nprogram = \"/nonexistent/claude\"\n\n[[task]]\nid = \"a\"\nagent = \"claude\"\nprompt = \"Do it.\"\n",
            Overrides::default(),
        ),
        (
            "[swarm]\nsandbox = \"none\"\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n",
            Overrides {
                concurrency: Some(0),
                ..Overrides::default()
            },
        ),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (text, overrides) in bad {
        let mut plan =
            plan::parse(&plan_path, text.to_string()).unwrap_or_else(|e| panic!("{text}: {e}"));
        super::apply(&mut plan, overrides);
        let checked = super::check(&plan, &host(), overrides, &Models::Own)
            .err()
            .unwrap_or_else(|| panic!("check passed\n{text}"))
            .to_string();
        let assembled = runtime
            .block_on(assemble(
                &plan,
                "plan.toml",
                &host(),
                overrides,
                Models::Own,
            ))
            .err()
            .unwrap_or_else(|| panic!("assemble passed\n{text}"))
            .to_string();
        assert_eq!(checked, assembled, "{text}");
    }
}

/// A node's token opens tunnels through the relay only to hosts a network
/// list of the plan allows (`[executor] egress = "coordinator"`): an
/// attacker holding the token gets no open proxy, one without it nothing.
#[tokio::test]
async fn the_relay_tunnels_only_to_hosts_the_plans_lists_allow() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listed.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listed.accept().await {
            let _ = s.write_all(b"hello through\n").await;
        }
    });
    let text = format!(
        "[executor]\nkind = \"slurm\"\negress = \"coordinator\"\n\n\
         [setup]\nrun = \"true\"\nnetwork = [\"127.0.0.1:{port}\"]\n\n\
         [[task]]\nid = \"a\"\nrun = \"true\"\nnetwork = [\"example.org\"]\n"
    );
    let plan = plan::parse(std::path::Path::new("plan.toml"), text).unwrap();
    let gateway = super::gateway::empty().unwrap();
    let scopes = super::gateway::relay_scopes(&plan, &gateway);
    let relay = crate::gateway::relay::Relay::start(
        gateway,
        "127.0.0.1:0".parse().unwrap(),
        "tok".into(),
        scopes,
        Some(super::gateway::egress_check(&plan)),
    )
    .await
    .unwrap();
    let ask = |target: String, token: &'static str| {
        let addr = relay.addr();
        async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nAuthorization: Bearer {token}\r\n\r\n"
            );
            s.write_all(head.as_bytes()).await.unwrap();
            let mut got = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                let mut buf = [0u8; 512];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    // A tunnel's bytes, or a refusal's whole JSON body.
                    if got.ends_with(b"hello through\n")
                        || (!got.starts_with(b"HTTP/1.1 200") && got.ends_with(b"}}"))
                    {
                        break;
                    }
                }
            })
            .await;
            String::from_utf8_lossy(&got).into_owned()
        }
    };
    let through = ask(format!("127.0.0.1:{port}"), "tok").await;
    assert!(
        through.starts_with("HTTP/1.1 200") && through.ends_with("hello through\n"),
        "{through}"
    );
    // Not in any list: the port of the relay itself, another host.
    let relay_port = relay.addr().port();
    for target in [format!("127.0.0.1:{relay_port}"), "10.0.0.1:22".into()] {
        let refused = ask(target.clone(), "tok").await;
        assert!(
            refused.starts_with("HTTP/1.1 403")
                && refused.contains("no network list of the run's plan allows"),
            "{target}: {refused}"
        );
    }
    let no_token = ask(format!("127.0.0.1:{port}"), "wrong").await;
    assert!(no_token.starts_with("HTTP/1.1 401"), "{no_token}");
}
