//! Every script in `bench/` still runs as committed (issue 30): each is run
//! in smoke mode (`SMOKE=1`: a handful of tasks and files, one run; see
//! `bench/common.sh`) with this build's debug `swarm` and example harnesses,
//! and must exit 0 with a table of figures. The figures themselves are not
//! checked: timings on a shared CI machine mean nothing. A plan check that
//! starts refusing or warning about a plan a script writes, or a benchmarked
//! command that fails, fails the script and so the test.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::sandbox::sandbox_available;
use crate::support::slurm::Cluster;
use crate::support::{Run, TestRepo, hermetic, redact, snapshot_settings, swarm_bin};

/// The harnesses `bench/run.sh` and `bench/repomap.py` drive.
const EXAMPLES: [&str; 6] = [
    "bench_git",
    "bench_spawn",
    "bench_wasm",
    "bench_agents",
    "bench_ownership",
    "repomap",
];

/// The workspace's root, where `bench/` is.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The example harnesses, built beside the `swarm` under test
/// (`target/debug/examples/`). `cargo test --workspace` builds them before
/// it runs any test; `cargo test -p swarm --test e2e` alone does not, and
/// then this says what to run rather than skip.
fn examples_dir() -> PathBuf {
    let dir = Path::new(swarm_bin())
        .parent()
        .expect("the swarm binary is in a directory")
        .join("examples");
    let missing: Vec<_> = EXAMPLES
        .iter()
        .filter(|name| !dir.join(name).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "the example harnesses {missing:?} are missing from {}: run \
         `cargo build --workspace --all-targets --locked` first",
        dir.display()
    );
    dir
}

/// The machine's cargo home (its registry holds regex-syntax for
/// `bench/cargo.sh`), as the toolchains tests find it.
fn real_cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .filter(|d| d.join("registry").is_dir())
        .expect("a cargo home with a registry (CARGO_HOME or ~/.cargo): run `cargo fetch`")
}

/// `cmd` (a benchmark script that runs cargo) given the machine's cargo:
/// its home, and rustup's home and toolchain where cargo is a proxy.
fn with_the_machines_cargo(cmd: &mut Command) {
    cmd.env("CARGO_HOME", real_cargo_home());
    if let Some(rustup) = real_rustup_home() {
        cmd.env("RUSTUP_HOME", rustup);
    }
    if let Some(toolchain) = std::env::var_os("RUSTUP_TOOLCHAIN") {
        cmd.env("RUSTUP_TOOLCHAIN", toolchain);
    }
}

/// The machine's rustup home, when cargo is a rustup proxy.
fn real_rustup_home() -> Option<PathBuf> {
    std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")))
        .filter(|d| d.is_dir())
}

/// A smoke run of one script: its temporary directory (HOME, TMPDIR, OUT),
/// and the hermetic environment of the other e2e tests.
struct Smoke {
    repo: TestRepo,
}

impl Smoke {
    fn new() -> Self {
        let smoke = Self {
            repo: TestRepo::new(),
        };
        std::fs::create_dir_all(smoke.tmp()).expect("mkdir tmp");
        smoke
    }

    /// Whether the sandbox can be enforced here (it must be under CI);
    /// the scripts run sandboxed tasks.
    fn sandbox_available(&self) -> bool {
        sandbox_available(&self.repo)
    }

    fn tmp(&self) -> PathBuf {
        self.repo.root().join("tmp")
    }

    /// Where the scripts that write BENCHMARKS.md write instead.
    fn out(&self) -> PathBuf {
        self.repo.root().join("BENCHMARKS.md")
    }

    /// `program args` in `bench/`'s smoke mode with this build's binaries.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        hermetic(&mut cmd, &self.repo.home());
        cmd.current_dir(root())
            .args(args)
            .env("SMOKE", "1")
            .env("SWARM", swarm_bin())
            .env("BENCH_BIN_DIR", examples_dir())
            .env("OUT", self.out())
            .env("TMPDIR", self.tmp())
            .env("RUST_BACKTRACE", "0");
        cmd
    }

    /// Runs the command, failing the test with its output unless it exits 0.
    #[track_caller]
    fn run(&self, name: &str, mut cmd: Command) -> Run {
        let started = Instant::now();
        let run: Run = cmd.output().expect("run the script").into();
        eprintln!(
            "{name}: {:.1} s in smoke mode",
            started.elapsed().as_secs_f64()
        );
        run.assert_code(0);
        run
    }

    /// What the script wrote to OUT.
    #[track_caller]
    fn written(&self) -> String {
        std::fs::read_to_string(self.out()).expect("the script wrote OUT")
    }
}

/// Asserts that `text` holds a Markdown table whose every row of data has
/// a figure (a digit past the row's label) or says `n/a` (a tool this
/// machine lacks, such as GNU parallel): an empty cell is a measurement
/// that silently did not happen.
#[track_caller]
fn assert_tables_have_figures(text: &str) {
    let mut rows = 0;
    for line in text.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
        let is_rule = cells
            .iter()
            .all(|c| c.trim().chars().all(|ch| matches!(ch, '-' | ':')));
        let is_header = !is_rule
            && text
                .lines()
                .skip_while(|l| *l != line)
                .nth(1)
                .is_some_and(|next| next.starts_with("|---"));
        if is_rule || is_header {
            continue;
        }
        rows += 1;
        assert!(
            line.contains("n/a")
                || cells[1..]
                    .iter()
                    .any(|c| c.chars().any(|ch| ch.is_ascii_digit())),
            "a table row without figures: {line}\n--- in\n{text}"
        );
    }
    assert!(rows > 0, "no table rows in:\n{text}");
}

/// The headings of `text`'s sections (`## ` and `### `): what a section
/// is, without its figures.
fn outline(text: &str) -> String {
    text.lines()
        .filter(|l| l.starts_with("## ") || l.starts_with("### "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn bench_run_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    // Sections 9-11 are the other scripts, tested on their own below. The
    // work goes to the default tmpfs (/dev/shm), as in a real run.
    let mut cmd = smoke.command("bash", &["bench/run.sh"]);
    cmd.env("SUBSCRIPTS", "0");
    smoke.run("bench/run.sh", cmd);
    let out = smoke.written();
    // Its sections, and the word that their figures measure nothing.
    let smoke_note = out.lines().find(|l| l.starts_with("**Smoke run"));
    insta::assert_snapshot!(format!("{}\n{smoke_note:?}", outline(&out)), @r#"
    ## 1. 1,000 no-op read-only tasks
    ## 2. 200 writing tasks on a 100-file repository
    ## 3. Worktrees of a 10,000-file repository
    ## 4. Merging 50 disjoint task results (10,000-file repository)
    ### Snapshots (same repository)
    ## 5. Starting a worker: sandboxed vs plain
    ## 6. WASM tasks
    ## 7. Agent tasks: the model gateway and the agent worker
    ## 8. 10,000 tasks
    Some("**Smoke run (`SMOKE=1`): a handful of tasks and files, one run each; these figures measure nothing.**")
    "#);
    assert_tables_have_figures(&out);
}

#[test]
fn bench_run_sh_fails_naming_a_benchmarked_command_that_fails() {
    let smoke = Smoke::new();
    // A swarm whose runs are refused, as a new plan check would refuse a
    // plan: validate and --version still work.
    let fake = smoke.repo.root().join("refusing-swarm");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\ncase \" $* \" in *\" run \"*) echo 'error: invalid plan (fake)' >&2; exit 2 ;; esac\nexec {} \"$@\"\n",
            swarm_bin()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = smoke.command("bash", &["bench/run.sh"]);
    cmd.env("SWARM", &fake).env("SUBSCRIPTS", "0");
    let run: Run = cmd.output().unwrap().into();
    assert_eq!(run.code, 1, "{run:?}");
    // The step that failed, and what it said.
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&run.stderr, &smoke.repo), @r#"
        run.sh: benchmarked command failed (exit 2): swarm_noop
        --- its output (last 40 lines):
        error: invalid plan (fake)
        failed (exit 2): "$SWARM" run -q -j "$NPROC" "$WORK/noop.toml"
        "#)
    });
    assert!(!smoke.out().exists(), "a failed run wrote OUT");
}

#[test]
fn bench_pertask_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    let run = smoke.run(
        "bench/pertask.sh",
        smoke.command("bash", &["bench/pertask.sh"]),
    );
    insta::assert_snapshot!(outline(&run.stdout), @"## 17. Per-task cost and scale");
    assert!(
        run.stdout.contains("**swarm**, sandboxed"),
        "{}",
        run.stdout
    );
    assert_tables_have_figures(&run.stdout);
}

#[test]
fn bench_bigwrite_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    // The script itself fails if a run merged another tree than its
    // script by hand.
    let run = smoke.run(
        "bench/bigwrite.sh",
        smoke.command("bash", &["bench/bigwrite.sh"]),
    );
    insta::assert_snapshot!(outline(&run.stdout), @"## 31. Writing tasks on a large repository, sandboxed");
    assert_tables_have_figures(&run.stdout);
}

#[test]
fn bench_spawn_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    // This build against itself as the baseline: the baseline's rows too.
    let mut cmd = smoke.command("bash", &["bench/spawn.sh"]);
    cmd.env("BASELINE", swarm_bin());
    let run = smoke.run("bench/spawn.sh", cmd);
    for row in [
        "| plain (tokio",
        "| sandboxed, this build",
        "| sandboxed, baseline",
    ] {
        assert!(run.stdout.contains(row), "no `{row}` row: {}", run.stdout);
    }
    assert!(
        run.stdout
            .contains("This build over the baseline, per round"),
        "{}",
        run.stdout
    );
    assert_tables_have_figures(&run.stdout);
}

#[test]
fn bench_cargo_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    let mut cmd = smoke.command("bash", &["bench/cargo.sh"]);
    with_the_machines_cargo(&mut cmd);
    smoke.run("bench/cargo.sh", cmd);
    let out = smoke.written();
    assert!(out.contains("## 9. "), "{out}");
    assert_tables_have_figures(&out);
}

#[test]
fn bench_refactor_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    let mut cmd = smoke.command("bash", &["bench/refactor.sh"]);
    with_the_machines_cargo(&mut cmd);
    smoke.run("bench/refactor.sh", cmd);
    let out = smoke.written();
    assert!(out.contains("## 27. "), "{out}");
    assert_tables_have_figures(&out);
}

/// Runs `bench/<script>.py WORK OUT [extra]` in smoke mode, checks that
/// it wrote figures in its tables and returns the headings it wrote.
fn python_bench_writes_section(script: &str, extra: &[&str]) -> String {
    let smoke = Smoke::new();
    let work = smoke.tmp().join(script);
    std::fs::create_dir_all(&work).unwrap();
    let path = format!("bench/{script}.py");
    let out = smoke.out();
    let mut args = vec![path.as_str(), work.to_str().unwrap(), out.to_str().unwrap()];
    args.extend_from_slice(extra);
    smoke.run(&path, smoke.command("python3", &args));
    let out = smoke.written();
    assert_tables_have_figures(&out);
    outline(&out)
}

#[test]
fn bench_dispatch_py_runs_in_smoke_mode() {
    let after = format!("after={}", swarm_bin());
    insta::assert_snapshot!(python_bench_writes_section("dispatch", &[&after]), @"## 10. Dispatch latency while merges run");
}

#[test]
fn bench_schedule_py_runs_in_smoke_mode() {
    insta::assert_snapshot!(python_bench_writes_section("schedule", &[]), @"## 16. Scheduling by learned durations");
}

#[test]
fn bench_repomap_py_runs_in_smoke_mode() {
    insta::assert_snapshot!(python_bench_writes_section("repomap", &[]), @"## 11. Repository map for the planner");
}

#[test]
fn bench_bisect_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    let run = smoke.run(
        "bench/bisect.sh",
        smoke.command("bash", &["bench/bisect.sh"]),
    );
    // The culprit is found by swarm three ways and by hand.
    assert_eq!(run.stdout.matches("`t3` in").count(), 4, "{}", run.stdout);
    assert_tables_have_figures(&run.stdout);
}

#[test]
fn bench_flaky_verify_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    let run = smoke.run(
        "bench/flaky_verify.sh",
        smoke.command("bash", &["bench/flaky_verify.sh"]),
    );
    // Both rows, the culprit found in each run with retries.
    assert!(run.stdout.contains("| 1 | 2 |"), "{}", run.stdout);
    assert!(run.stdout.contains("| 0 | 2 |"), "{}", run.stdout);
    assert_tables_have_figures(&run.stdout);
}

#[test]
fn bench_setup_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    // npm and node from the machine (.ci/run installs them).
    let cmd = smoke.command("bash", &["bench/setup.sh"]);
    smoke.run("bench/setup.sh", cmd);
    let out = smoke.written();
    insta::assert_snapshot!(outline(&out), @"## 22. Setting up worktrees: `npm ci` once per lockfile");
    assert!(out.contains("(first run: 1 of 2 tasks ran it)"), "{out}");
    assert_tables_have_figures(&out);
}

#[test]
fn bench_shards_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    // pytest from tests/python-tools (.ci/run installs it).
    crate::support::python_tool("pytest");
    let cmd = smoke.command("bash", &["bench/shards.sh"]);
    smoke.run("bench/shards.sh", cmd);
    let out = smoke.written();
    insta::assert_snapshot!(outline(&out), @r#"## 23. A test suite sharded: `shards = "auto"` against pytest and pytest-xdist"#);
    assert!(
        out.contains("holds 8 test cases, as pytest's\nown report does (8)"),
        "{out}"
    );
    assert_tables_have_figures(&out);
}

#[test]
fn bench_spread_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    crate::support::python_tool("pytest");
    let cmd = smoke.command("bash", &["bench/spread.sh"]);
    smoke.run("bench/spread.sh", cmd);
    let out = smoke.written();
    insta::assert_snapshot!(outline(&out), @"## 28. Shard spread and running again only what failed");
    // The mended test alone ran again, in its one shard.
    assert!(out.contains("(1 shard of 2\nran again)"), "{out}");
    assert_tables_have_figures(&out);
}

#[test]
fn bench_shards_cargo_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    // cargo from the machine; a made-up crate without dependencies.
    let mut cmd = smoke.command("bash", &["bench/shards_cargo.sh"]);
    with_the_machines_cargo(&mut cmd);
    smoke.run("bench/shards_cargo.sh", cmd);
    let out = smoke.written();
    insta::assert_snapshot!(outline(&out), @r#"## 24. A Rust crate's tests sharded: `shards = "auto"` against cargo test and nextest"#);
    assert!(
        out.contains("swarm's shards ran 3 tests, as `cargo test` did (3)."),
        "{out}"
    );
    assert_tables_have_figures(&out);
}

#[test]
fn bench_spread_cargo_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    // cargo and cargo-nextest from the machine; a made-up crate.
    let mut cmd = smoke.command("bash", &["bench/spread_cargo.sh"]);
    with_the_machines_cargo(&mut cmd);
    cmd.env("NEXTEST", crate::flaky_tests::cargo_nextest());
    smoke.run("bench/spread_cargo.sh", cmd);
    let out = smoke.written();
    insta::assert_snapshot!(outline(&out), @"
    ## 30. Shard spread of a crate's tests under cargo nextest
    ### What any grouping made before a run can do
    ");
    assert_tables_have_figures(&out);
    // The long file was split, every test ran once, and the bound has
    // its row.
    let said: String = out
        .lines()
        .filter(|l| l.starts_with("| 2 |") || l.contains("passed the") || l.starts_with("- N ="))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d+\.\d\d", "[X]");
    // The models' errors (bench/spread_schedule.py).
    settings.add_filter(r"\d+ (shards|ms)", "[N] $1");
    settings.add_filter(r"\(\d+%\)", "([P]%)");
    // How many of the rounds ran the last one's grouping: a made-up
    // crate's profile may cut its parts again in the second round.
    settings.add_filter(r"\[X\] \(\d\)", "[X] ([ROUNDS])");
    settings.bind(|| {
        insta::assert_snapshot!(said, @"
        passed the 10 tests one `cargo nextest run` passes. 2 measured rounds, each with the
        | 2 | 1 | **[X]** | [X] | [X] ([ROUNDS]) | [X] | [X] s | [X] s |
        - N = 2: [N] shards, mean span [N] ms: scaled sum off by [N] ms on average ([P]%), [N] ms at most; list schedule off by [N] ms on average ([P]%), [N] ms at most
        | 2 | [X] s | [X] / [X] | **[X]** | [X] |
        ")
    });
}

#[test]
fn bench_merge_queue_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    // The crate the tasks edit comes from cargo's registry.
    let mut cmd = smoke.command("bash", &["bench/merge_queue.sh"]);
    cmd.env("CARGO_HOME", real_cargo_home());
    let run = smoke.run("bench/merge_queue.sh", cmd);
    // Conflicts are left to a person only before re-runs.
    assert!(run.stdout.contains("| 3 conflicted |"), "{}", run.stdout);
    assert!(
        run.stdout.contains("re-run and predict (default) |"),
        "{}",
        run.stdout
    );
    assert_tables_have_figures(&run.stdout);
}

#[test]
fn bench_experiments_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    let run = smoke.run(
        "bench/experiments.sh",
        smoke.command("bash", &["bench/experiments.sh"]),
    );
    assert!(run.stdout.contains("`variants = 4`"), "{}", run.stdout);
    assert_tables_have_figures(&run.stdout);
}

#[test]
fn bench_slurm_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    // The test cluster, one at a time like the Slurm executor's tests;
    // the script uses it instead of starting its own.
    let cluster = Cluster::start();
    let mut cmd = smoke.command("bash", &["bench/slurm.sh"]);
    cmd.env("BENCH_CLUSTER", cluster.dir());
    let run = smoke.run("bench/slurm.sh", cmd);
    assert!(run.stdout.contains("Slurm executor"), "{}", run.stdout);
    assert_tables_have_figures(&run.stdout);
}

#[test]
fn bench_slurm_setup_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    let cluster = Cluster::start();
    let mut cmd = smoke.command("bash", &["bench/slurm_setup.sh"]);
    cmd.env("BENCH_CLUSTER", cluster.dir());
    let run = smoke.run("bench/slurm_setup.sh", cmd);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&run.stdout, &smoke.repo), @"wrote section 14g of [TMP]/BENCHMARKS.md"));
    let written = smoke.written();
    assert!(written.contains("kept per node"), "{written}");
    assert_tables_have_figures(&written);
}

#[test]
fn bench_hung_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    let run = smoke.run("bench/hung.sh", smoke.command("bash", &["bench/hung.sh"]));
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&run.stdout, &smoke.repo), @"wrote section 29 of [TMP]/BENCHMARKS.md"));
    let written = smoke.written();
    assert!(
        written.contains("killed for memory (OOM) | **0**"),
        "{written}"
    );
    assert!(written.contains("failed to start | **0**"), "{written}");
    assert_tables_have_figures(&written);
}

#[test]
fn bench_agent_clis_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    if !smoke.sandbox_available() {
        return;
    }
    // The CLIs come from the npm registry (tests/agent-clis), as in CI.
    crate::support::agent_cli("claude");
    let run = smoke.run(
        "bench/agent_clis.sh",
        smoke.command("bash", &["bench/agent_clis.sh"]),
    );
    insta::assert_snapshot!(outline(&run.stdout), @"## 18. Agent CLIs as workers: start-up, memory, the door's latency");
    assert!(run.stdout.contains("| Claude Code |"), "{}", run.stdout);
    assert_tables_have_figures(&run.stdout);
}

#[test]
fn bench_prompt_cache_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    let run = smoke.run(
        "bench/prompt_cache.sh",
        smoke.command("bash", &["bench/prompt_cache.sh"]),
    );
    insta::assert_snapshot!(outline(&run.stdout), @"## 19. Prompt caching: a 4-turn agent session billed");
    assert!(run.stdout.contains("cheaper**"), "{}", run.stdout);
    assert_tables_have_figures(&run.stdout);
}

#[test]
fn bench_report_html_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    let run = smoke.run(
        "bench/report_html.sh",
        smoke.command("bash", &["bench/report_html.sh"]),
    );
    let section = smoke.written();
    assert!(!section.is_empty(), "{}", run.stderr);
    insta::assert_snapshot!(outline(&section), @"## 20. Looking at a run: the page and the trace of 20 tasks");
    assert_tables_have_figures(&section);
}

#[test]
fn bench_hold_sh_runs_in_smoke_mode() {
    let smoke = Smoke::new();
    // Both "builds" are this one: the script's rows, not its ratios.
    let build = smoke.tmp().join("build");
    std::fs::create_dir_all(&build).unwrap();
    std::os::unix::fs::symlink(swarm_bin(), build.join("swarm")).unwrap();
    std::os::unix::fs::symlink(examples_dir().join("bench_git"), build.join("bench_git")).unwrap();
    let build = build.to_str().unwrap();
    let cmd = smoke.command("bash", &["bench/hold.sh", build, build]);
    let run = smoke.run("bench/hold.sh", cmd);
    assert!(
        run.stdout.contains("writing tasks, unconfined"),
        "{}",
        run.stdout
    );
    assert_tables_have_figures(&run.stdout);
}

#[test]
fn bench_local_model_py_runs_in_smoke_mode() {
    // The real server and model, built once as the local-model tests
    // build them, and that build given to the script: its environment is
    // cleared, and without the directory it would build its own (where
    // CI's setup put the build elsewhere, 27 minutes of a run).
    let built = crate::support::local_model::built();
    let smoke = Smoke::new();
    let mut cmd = smoke.command("python3", &["bench/local_model.py"]);
    cmd.env("SWARM_LOCAL_MODEL_DIR", &built);
    let run = smoke.run("bench/local_model.py", cmd);
    let written = smoke.written();
    insta::assert_snapshot!(outline(&written), @"## 26. A local model: what swarm adds to a turn, and a run replayed");
    assert!(written.contains("faster**"), "{written}");
    assert!(
        written.contains("| Claude Code's request at the door"),
        "{written}"
    );
    assert_tables_have_figures(&run.stdout);
}
