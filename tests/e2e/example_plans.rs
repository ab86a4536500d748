//! Every plan in `plans/` is valid, and the quickstart and CI-batch plans
//! really run to success in a fresh repository.

use std::path::PathBuf;

use crate::support::{TestRepo, redact, snapshot_settings, task};

fn example_plans() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plans");
    let mut plans: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    plans.sort();
    assert!(
        plans.len() >= 2,
        "expected example plans in {}",
        dir.display()
    );
    plans
}

#[test]
fn every_example_plan_validates() {
    let repo = TestRepo::new();
    // What the agent refactor's `paths` name: a Rust workspace's crates
    // and docs (paths a plan names must exist at its base).
    for krate in ["core", "server", "cli"] {
        repo.write(&format!("crates/{krate}/Cargo.toml"), "[package]\n");
    }
    repo.write("README.md", "# demo\n");
    repo.write("docs/setup.md", "setup\n");
    repo.commit_all("a workspace for the example plans");
    // The agent CLIs a plan names must be on PATH (plans/agent-clis.toml);
    // besides them only git: no toolchain of this machine's in what
    // validate says.
    let clis = crate::support::agent_cli("claude");
    let mut said = String::new();
    for plan in example_plans() {
        let mut cmd = repo.swarm_cmd(&["validate", plan.to_str().unwrap()]);
        crate::sandbox::only_git_in_path(&repo, &mut cmd);
        cmd.env(
            "PATH",
            format!(
                "{}:{}",
                clis.parent().unwrap().display(),
                repo.root().join("only-git").display()
            ),
        );
        let run: crate::support::Run = cmd.output().unwrap().into();
        run.assert_code(0);
        let name = format!("plans/{}", plan.file_name().unwrap().to_str().unwrap());
        let stdout = run.stdout.replace(&plan.display().to_string(), &name);
        said.push_str(&format!("$ swarm validate {name}\n{stdout}\n"));
    }
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&said, &repo), @r#"
    $ swarm validate plans/agent-clis.toml
    plans/agent-clis.toml: ok: 3 tasks, 1 without dependencies, longest chain 3, base HEAD ([HASH])
    toolchains        none found (or turned off by `toolchains`)
    worktrees         [WORKTREES]
    warm              1 task's worktree: kept between runs ([WORKTREES]/.warm; `warm = false` opts out)
    model key         `default`: $ANTHROPIC_API_KEY -> api.anthropic.com
    model key         `oai`: $OPENAI_API_KEY -> api.openai.com

    $ swarm validate plans/agent-refactor.toml
    plans/agent-refactor.toml: ok: 4 tasks, 3 without dependencies, longest chain 2, base HEAD ([HASH])
    toolchains        none found (or turned off by `toolchains`)
    worktrees         [WORKTREES]
    warm              4 tasks' worktrees: kept between runs ([WORKTREES]/.warm; `warm = false` opts out)
    model key         `default`: $ANTHROPIC_API_KEY -> api.anthropic.com

    $ swarm validate plans/best-of-compress.toml
    plans/best-of-compress.toml: ok: 2 tasks (1 experiment of 6 variants: 7 tasks run), 6 without dependencies, longest chain 3, base HEAD ([HASH])
    toolchains        none found (or turned off by `toolchains`)
    worktrees         [WORKTREES]
    warm              8 tasks' worktrees: kept between runs ([WORKTREES]/.warm; `warm = false` opts out)

    $ swarm validate plans/ci-batch.toml
    plans/ci-batch.toml: ok: 9 tasks, 8 without dependencies, longest chain 2, base HEAD ([HASH])
    toolchains        none found (or turned off by `toolchains`)
    worktrees         [WORKTREES]
    warm              5 tasks' worktrees: kept between runs ([WORKTREES]/.warm; `warm = false` opts out)

    $ swarm validate plans/cluster-shards.toml
    plans/cluster-shards.toml: ok: 7 tasks, 6 without dependencies, longest chain 2, base HEAD ([HASH])
    toolchains        none found (or turned off by `toolchains`)
    worktrees         [WORKTREES]
    warm              7 tasks' worktrees: kept between runs ([WORKTREES]/.warm; `warm = false` opts out)
    weakens           plans/cluster-shards.toml:17: [executor] kind = "slurm": sends tasks and the repository to a cluster, outside this machine's sandbox

    $ swarm validate plans/fan-out.toml
    plans/fan-out.toml: ok: 2 tasks, 1 without dependencies, longest chain 2, base HEAD ([HASH])
    toolchains        none found (or turned off by `toolchains`)
    worktrees         [WORKTREES]
    warm              2 tasks' worktrees: kept between runs ([WORKTREES]/.warm; `warm = false` opts out)

    $ swarm validate plans/planned-docs.toml
    plans/planned-docs.toml: ok: 4 tasks, 3 without dependencies, longest chain 2, base HEAD ([HASH])
    toolchains        none found (or turned off by `toolchains`)
    worktrees         [WORKTREES]
    warm              4 tasks' worktrees: kept between runs ([WORKTREES]/.warm; `warm = false` opts out)
    model key         `default`: $ANTHROPIC_API_KEY -> api.anthropic.com

    $ swarm validate plans/quickstart.toml
    plans/quickstart.toml: ok: 4 tasks, 2 without dependencies, longest chain 3, base HEAD ([HASH])
    toolchains        none found (or turned off by `toolchains`)
    worktrees         [WORKTREES]
    warm              3 tasks' worktrees: kept between runs ([WORKTREES]/.warm; `warm = false` opts out)

    $ swarm validate plans/verify-bisect.toml
    plans/verify-bisect.toml: ok: 7 tasks, 6 without dependencies, longest chain 2, base HEAD ([HASH])
    toolchains        none found (or turned off by `toolchains`)
    worktrees         [WORKTREES]
    warm              7 tasks' worktrees: kept between runs ([WORKTREES]/.warm; `warm = false` opts out)

    $ swarm validate plans/wasm-stamp.toml
    plans/wasm-stamp.toml: ok: 5 tasks, 4 without dependencies, longest chain 2, base HEAD ([HASH])
    toolchains        none found (or turned off by `toolchains`)
    worktrees         [WORKTREES]
    warm              5 tasks' worktrees: kept between runs ([WORKTREES]/.warm; `warm = false` opts out)
    "#));
}

#[test]
fn quickstart_runs_and_merges() {
    let repo = TestRepo::new();
    let plan = example_plans()
        .into_iter()
        .find(|p| p.ends_with("quickstart.toml"))
        .unwrap();
    repo.run_plan(&plan, &[]).assert_code(0);
    let summary = repo.show("swarm/quickstart", "swarm-demo/SUMMARY.txt");
    assert!(
        summary.starts_with("Generated by swarm task notes"),
        "{summary}"
    );
    let report = repo.report();
    assert_eq!(task(&report, "check")["status"], "succeeded");
}

#[test]
fn ci_batch_runs_and_merges() {
    let repo = TestRepo::new();
    let plan = example_plans()
        .into_iter()
        .find(|p| p.ends_with("ci-batch.toml"))
        .unwrap();
    repo.run_plan(&plan, &[]).assert_code(0);
    let index = repo.show("swarm/ci-batch", ".swarm-manifest/INDEX.txt");
    assert_eq!(index.lines().count(), 3, "{index}");
    insta::assert_snapshot!(index, @"
    12 README.md
    6 docs/guide.txt
    8 src/lib.txt
    ");
}

#[test]
fn fan_out_spawns_a_subtask_per_kind_of_file_and_merges_them_before_its_summary() {
    let repo = TestRepo::new();
    repo.write("src/a.rs", "fn a() {}\nfn b() {}\n");
    repo.write("src/b.rs", "fn c() {}\n");
    repo.write("docs/x.md", "# x\n");
    repo.commit_all("files of two kinds");
    let plan = example_plans()
        .into_iter()
        .find(|p| p.ends_with("fan-out.toml"))
        .unwrap();
    repo.run_plan(&plan, &[]).assert_code(0);
    let report = repo.report();
    let survey = task(&report, "survey");
    assert!(
        survey["subtasks"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("survey/count-rs")),
        "{report}"
    );
    let summary = repo.show("swarm/fan-out", "swarm-fanout/SUMMARY.md");
    // `md: 2 lines`: the test repository has a README too.
    insta::assert_snapshot!(summary, @"
    txt: 5 lines
    rs: 3 lines
    md: 2 lines
    ");
}

/// Asserts that `swarm schema ARGS` prints what is committed at `file`
/// (rewriting it with SWARM_UPDATE_SCHEMA=1); returns the schema.
fn assert_committed_schema(file: &str, args: &[&str], test: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(file);
    let repo = TestRepo::new();
    let mut cmd = vec!["schema"];
    cmd.extend_from_slice(args);
    let run = repo.swarm(&cmd);
    run.assert_code(0);
    if std::env::var_os("SWARM_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &run.stdout).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == run.stdout,
        "{file} is out of date: run `SWARM_UPDATE_SCHEMA=1 cargo test -p swarm --test e2e {test}`"
    );
    committed
}

/// The schema of `--events json` and `events.jsonl`: a change to it shows
/// here, and must come with a version bump if it is not additive.
#[test]
fn committed_events_schema_is_current() {
    let committed = assert_committed_schema(
        "events.schema.json",
        &["--events"],
        "committed_events_schema",
    );
    // Every event in it, by name.
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    let text = schema.to_string();
    for event in [
        "run_started",
        "run_resumed",
        "task_queued",
        "task_started",
        "agent_tool",
        "agent_usage",
        "budget_spent",
        "attempt_finished",
        "task_finished",
        "task_merged",
        "task_conflicted",
        "run_finished",
    ] {
        assert!(
            text.contains(&format!("\"{event}\"")),
            "{event} missing from the schema"
        );
    }
}

/// The schema of a cassette's lines (`swarm run --record`), for people
/// who write cassettes by hand.
#[test]
fn committed_cassette_schema_is_current() {
    let committed = assert_committed_schema(
        "cassette.schema.json",
        &["--cassette"],
        "committed_cassette_schema",
    );
    for field in ["exchange", "request", "response", "events", "contains"] {
        assert!(committed.contains(&format!("\"{field}\"")), "{field}");
    }
}

#[test]
fn committed_json_schema_is_current() {
    assert_committed_schema("plan.schema.json", &[], "committed_json_schema");
}

#[test]
fn example_wasm_tool_is_built_from_its_source() {
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plans/tools");
    let built = wat::parse_file(tools.join("stamp.wat")).unwrap();
    if std::env::var_os("SWARM_UPDATE_SCHEMA").is_some() {
        std::fs::write(tools.join("stamp.wasm"), &built).unwrap();
    }
    assert!(
        std::fs::read(tools.join("stamp.wasm")).unwrap_or_default() == built,
        "plans/tools/stamp.wasm is out of date: run `SWARM_UPDATE_SCHEMA=1 cargo test -p swarm --test e2e example_wasm_tool`"
    );
}

#[test]
fn wasm_stamp_runs_and_merges() {
    let repo = TestRepo::new();
    for dir in ["orchestrator", "sandbox", "worker", "protocol"] {
        repo.write(&format!("{dir}/README.md"), "a crate\n");
    }
    repo.commit_all("crates");
    let plan = example_plans()
        .into_iter()
        .find(|p| p.ends_with("wasm-stamp.toml"))
        .unwrap();
    repo.run_plan(&plan, &[]).assert_code(0);
    let stamps = repo.show("swarm/wasm-stamp", "STAMPS.txt");
    assert_eq!(stamps.lines().count(), 4, "{stamps}");
    insta::assert_snapshot!(stamps, @"
    stamped by a WASI tool in swarm task orchestrator
    stamped by a WASI tool in swarm task protocol
    stamped by a WASI tool in swarm task sandbox
    stamped by a WASI tool in swarm task worker
    ");
}

/// The README's command list names every subcommand `swarm --help` lists:
/// a command added without a line there fails here.
#[test]
fn the_readme_lists_every_command() {
    let readme = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("README.md"),
    )
    .unwrap();
    let start = readme.find("## Commands").expect("a Commands section");
    let block = &readme[start..];
    let block = &block[..block.find("\n## ").unwrap_or(block.len())];
    let repo = TestRepo::new();
    let help = repo.swarm(&["--help"]);
    help.assert_code(0);
    let commands: Vec<&str> = help
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 10, "{}", help.stdout);
    // Every plan a command of the README runs is one of `plans/`.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    for (at, _) in readme.match_indices("swarm run plans/") {
        let rest = &readme[at + "swarm run ".len()..];
        let plan: String = rest
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '`')
            .collect();
        assert!(
            root.join(&plan).is_file(),
            "README runs {plan}, which plans/ lacks"
        );
    }
    for command in commands {
        assert!(
            block.contains(&format!("swarm {command} ")),
            "README's command list lacks `swarm {command}`"
        );
    }
}

/// A figure the README gives with BENCHMARKS.md as its source is one that
/// BENCHMARKS.md holds: the README quotes, it never measures on its own.
#[test]
fn the_readmes_figures_come_from_benchmarks() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let bench = std::fs::read_to_string(root.join("BENCHMARKS.md")).unwrap();
    let mut missing = Vec::new();
    for line in readme.lines().filter(|l| l.contains("BENCHMARKS")) {
        // Numbers followed by a unit: `1.63x`, `4.2 s`, `840 ms`, `4.4%`.
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if !bytes[i].is_ascii_digit()
                || (i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.'))
            {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_digit() || bytes[i] == b'.' || bytes[i] == b'-')
            {
                i += 1;
            }
            let number = line[start..i].trim_end_matches(['.', '-']);
            let rest = line[i..].trim_start_matches(' ');
            let unit = [
                "x ", "x,", "x)", "x;", "ms", "s ", "s,", "s)", "s;", "%", "MB",
            ]
            .iter()
            .any(|u| rest.starts_with(u));
            if unit && number.contains(['.', '-']) && !bench.contains(number) {
                missing.push(format!("{number} in: {line}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "README figures BENCHMARKS.md lacks:\n{}",
        missing.join("\n")
    );
}
