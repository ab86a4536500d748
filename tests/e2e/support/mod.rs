//! Shared support for end-to-end tests: hermetic temporary git repositories
//! and a way to drive the real `swarm` binary against them.
//!
//! Every process runs with a cleared environment, a temporary HOME, no
//! global or system git configuration and fixed commit dates, so tests see
//! the same thing on every machine.

#![allow(dead_code)]

pub mod local_model;
pub mod model;
pub mod slurm;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The `swarm` binary under test.
pub fn swarm_bin() -> &'static str {
    env!("CARGO_BIN_EXE_swarm")
}

/// A temporary git repository with a first commit.
pub struct TestRepo {
    /// Holds the repository (`repo/`), HOME (`home/`) and plans (`plans/`).
    root: TempDir,
}

/// What a `swarm` invocation did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Applies the hermetic environment to a command.
/// Where test repositories are made: `/tmp` when it is there, whatever
/// `TMPDIR` says, so that paths stay short (miette wraps a message at 100
/// columns, and a temp path cut in two could not be redacted from a
/// snapshot).
pub fn temp_root() -> PathBuf {
    let tmp = Path::new("/tmp");
    match tmp.is_dir() {
        true => tmp.to_path_buf(),
        false => std::env::temp_dir(),
    }
}

pub fn hermetic(cmd: &mut Command, home: &Path) {
    cmd.env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .env("LC_ALL", "C")
        .env("NO_COLOR", "1");
}

impl TestRepo {
    /// A repository whose first commit holds `README.md` and `src/lib.txt`.
    pub fn new() -> Self {
        let repo = Self::empty();
        repo.write("README.md", "# test repo\n");
        repo.write("src/lib.txt", "fn main\n");
        repo.write("docs/guide.txt", "guide\n");
        repo.commit_all("init");
        repo
    }

    /// An initialised repository with no commits.
    pub fn empty() -> Self {
        let root = tempfile::Builder::new()
            .prefix("swarm-e2e-")
            .tempdir_in(temp_root())
            .expect("tempdir");
        for dir in ["repo", "home", "plans", "outside"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("mkdir");
        }
        let repo = Self { root };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn path(&self) -> PathBuf {
        self.root.path().join("repo")
    }

    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// A directory outside the repository that tasks may write to (they
    /// run unsandboxed in these tests) to tell the test what they saw.
    pub fn outside(&self) -> PathBuf {
        self.root.path().join("outside")
    }

    pub fn write(&self, rel: &str, content: &str) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }

    pub fn commit_all(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    /// Runs git in the repository; panics unless it succeeds.
    #[track_caller]
    pub fn git(&self, args: &[&str]) -> String {
        let out = self.git_output(args);
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    pub fn git_output(&self, args: &[&str]) -> Output {
        self.git_output_in(&self.path(), args)
    }

    /// Runs git in another directory (a linked worktree, say).
    #[track_caller]
    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git_output_in(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    pub fn git_output_in(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new("git");
        hermetic(&mut cmd, &self.home());
        cmd.current_dir(dir).args(args).output().expect("run git")
    }

    /// Whether `git rev-parse --verify` finds `rev`.
    pub fn has_rev(&self, rev: &str) -> bool {
        self.git_output(&["rev-parse", "-q", "--verify", &format!("{rev}^{{commit}}")])
            .status
            .success()
    }

    /// A file's content at a revision.
    #[track_caller]
    pub fn show(&self, rev: &str, path: &str) -> String {
        self.git(&["show", &format!("{rev}:{path}")])
    }

    /// Writes a plan file (outside the repository) and returns its path.
    ///
    /// The plan lets its tasks overlap (`allow_overlap = true` in
    /// `[defaults]`: a table appended at the end, so line numbers in
    /// messages stay as written, or a line under the plan's own
    /// `[defaults]` header): these tests are about other things, and
    /// their parallel tasks without `paths` would otherwise be refused, as
    /// a user's would. The overlap check's own tests use
    /// [`plan_exact`](Self::plan_exact).
    pub fn plan(&self, name: &str, toml: &str) -> PathBuf {
        self.plan_exact(name, &allow_overlap(toml))
    }

    /// Writes a plan file exactly as given.
    pub fn plan_exact(&self, name: &str, toml: &str) -> PathBuf {
        let path = self.root.path().join("plans").join(name);
        std::fs::write(&path, toml).expect("write plan");
        path
    }

    /// A `swarm` command in the repository with the hermetic environment.
    pub fn swarm_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(swarm_bin());
        hermetic(&mut cmd, &self.home());
        cmd.current_dir(self.path()).args(args);
        cmd
    }

    pub fn swarm(&self, args: &[&str]) -> Run {
        self.swarm_cmd(args).output().expect("run swarm").into()
    }

    /// `swarm run PLAN` with extra arguments.
    pub fn run_plan(&self, plan: &Path, extra: &[&str]) -> Run {
        let plan = plan.to_str().expect("utf-8 path");
        let mut args = vec!["run", plan];
        args.extend_from_slice(extra);
        self.swarm(&args)
    }

    /// Where run `run` makes the worktree of `task`: in the repository's
    /// worktree home, outside the repository.
    pub fn worktree(&self, run: &str, task: &str) -> PathBuf {
        let of_run = self.worktree_home().join(run).join(task);
        // A warm one (kept between runs at one path per task) otherwise.
        match of_run.exists() {
            true => of_run,
            false => self.worktree_home().join(".warm").join(task),
        }
    }

    /// The repository's worktree home under the default root:
    /// `repo-<8 hex of the hash of its git directory's path>`.
    pub fn worktree_home(&self) -> PathBuf {
        use std::io::Write as _;
        let common = self.path().join(".git").canonicalize().expect("git dir");
        let mut child = Command::new("git")
            .args(["hash-object", "--stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("git hash-object");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(common.as_os_str().as_encoded_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("git hash-object");
        let hash = String::from_utf8_lossy(&out.stdout);
        self.worktree_root().join(format!("repo-{}", &hash[..8]))
    }

    /// The default root of worktree homes for this test's HOME.
    pub fn worktree_root(&self) -> PathBuf {
        self.home().join(".cache/swarm/worktrees")
    }

    /// The report of the latest run, via `swarm status --json`.
    pub fn report(&self) -> serde_json::Value {
        let run = self.swarm(&["status", "--json"]);
        run.assert_code(0);
        serde_json::from_str(&run.stdout).expect("status --json prints JSON")
    }

    /// Refs under `refs/swarm/` and `refs/heads/swarm/`, and `.swarm/`:
    /// whatever a run leaves behind. Empty means no side effects.
    pub fn swarm_traces(&self) -> Vec<String> {
        let mut traces: Vec<String> = self
            .git(&[
                "for-each-ref",
                "--format=%(refname)",
                "refs/swarm",
                "refs/heads/swarm",
            ])
            .lines()
            .map(str::to_string)
            .collect();
        if self.path().join(".swarm").exists() {
            traces.push(".swarm/".into());
        }
        if self.worktree_root().exists() {
            traces.push("worktree home".into());
        }
        let worktrees = self.git(&["worktree", "list", "--porcelain"]);
        traces.extend(
            worktrees
                .lines()
                .filter(|l| l.starts_with("worktree "))
                .skip(1)
                .map(str::to_string),
        );
        traces
    }
}

/// The task entry of a report by id.
#[track_caller]
pub fn task<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["tasks"]
        .as_array()
        .expect("tasks array")
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no task {id} in report"))
}

/// Replaces what changes from run to run (temp paths, hashes) so that
/// user-visible text can be snapshotted.
pub fn redact(text: &str, repo: &TestRepo) -> String {
    let root = repo.root().display().to_string();
    let mut out = text.to_string();
    // The repository's worktree home: `repo-<8 hex>` under the root, also
    // where no run made it yet (`swarm validate` names it).
    if repo.path().join(".git").exists() {
        out = out.replace(&repo.worktree_home().display().to_string(), "[WORKTREES]");
    }
    if let Ok(entries) = std::fs::read_dir(repo.worktree_root()) {
        for entry in entries.flatten() {
            let home = entry.path().display().to_string();
            out = out.replace(&home, "[WORKTREES]");
        }
    }
    let mut out = out.replace(&root, "[TMP]");
    // 40-hex commit ids and their 10/12-char abbreviations, also the few
    // made of digits (or letters) only: one in a hundred, and merge
    // commits have the time they were made.
    let mut redacted = String::with_capacity(out.len());
    let mut word = String::new();
    for c in out.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            word.push(c);
            continue;
        }
        let mixed = word.chars().any(|c| c.is_ascii_digit())
            && word.chars().any(|c| c.is_ascii_alphabetic());
        if word.len() >= 10 && (mixed || matches!(word.len(), 10 | 12 | 40)) {
            redacted.push_str("[HASH]");
        } else {
            redacted.push_str(&word);
        }
        word.clear();
        redacted.push(c);
    }
    redacted.pop();
    out = redacted;
    out
}

/// Regex filters for snapshots of what users see: what changes from run to
/// run and from machine to machine, replaced by a placeholder. Paths and
/// commit ids are [`redact`]'s (they need the repository).
const SNAPSHOT_FILTERS: [(&str, &str); 14] = [
    // JSON events and reports (compact or pretty): times, durations,
    // timestamps.
    (r#""ts":( ?)"[^"]+""#, r#""ts":$1"[TS]""#),
    (
        r#""(duration_ms|snapshot_ms|setup_ms|started_at|finished_at|age_secs)":( ?)("[^"]+"|\d+)"#,
        r#""$1":$2[X]"#,
    ),
    // JUnit: times and timestamps.
    (r#"time="[0-9.]+""#, r#"time="[T]""#),
    (r#"timestamp="[^"]+""#, r#"timestamp="[T]""#),
    // Durations as the summary, the live view and rankings print them:
    // `0.42s`, `12.5s`, `11m05s`. Same width, so tables stay aligned.
    (r"\b\d\.\d\ds\b", "[T]s"),
    (r"\b\d\d\d?\.\ds\b", "[T]s"),
    (r"\b\d+m\d\ds\b", "[T]s"),
    // Markdown's `12.34s`.
    (r"\b\d\d\.\d\ds\b", "[T]s"),
    // RFC 3339 times, and local ones as `swarm runs` prints them (same
    // width).
    (
        r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
        "[TIMESTAMP]",
    ),
    (r"\b\d{4}-\d\d-\d\d \d\d:\d\d\b", "YYYY-MM-DD hh:mm"),
    // Ports of servers the tests start, and process ids.
    (r"\b(127\.0\.0\.1|localhost|0\.0\.0\.0):\d+", "$1:[PORT]"),
    (r"\b(pid|PID|process) \d+", "$1 [PID]"),
    // Sizes on disk depend on the file system.
    // (Not TiB: tests ask for that much memory, more than any machine
    // has, and show it.)
    (r"\b\d+(\.\d+)? (B|KiB|MiB|GiB)\b", "[SIZE]"),
    // Abbreviated blob ids of a diff's `index` line.
    (
        r"(?m)^index [0-9a-f]{7,}\.\.[0-9a-f]{7,}",
        "index [BLOB]..[BLOB]",
    ),
];

/// Settings for snapshots of user-visible text, with the filters above;
/// use as `snapshot_settings().bind(|| insta::assert_snapshot!(name,
/// redact(&text, &repo)))`.
pub fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    for (regex, placeholder) in SNAPSHOT_FILTERS {
        settings.add_filter(regex, placeholder);
    }
    settings
}

/// [`snapshot_settings`] for a run whose concurrency is the machine's
/// (`up to N at once` in its first line, N the CPU count) as `[N]`.
pub fn snapshot_settings_any_cpus() -> insta::Settings {
    let mut settings = snapshot_settings();
    settings.add_filter(r"up to \d+ at once", "up to [N] at once");
    settings
}

/// The final summary of a run's stderr (from the blank line before its
/// `run NAME: ...` line): what is left on screen when it ends.
#[track_caller]
pub fn summary_of(stderr: &str) -> &str {
    let at = stderr
        .find("\n\nrun ")
        .unwrap_or_else(|| panic!("no summary in:\n{stderr}"));
    &stderr[at + 2..]
}

/// `text`'s lines grouped by what `key` says they are about (a task), the
/// groups in the order of their first lines, each group's lines in their
/// own order. Merges run on the dispatcher's writer thread, and a
/// dependent starts from its dependency's result, not its merge: whether a
/// task's merge or the next task's start is reported first differs from
/// run to run even one task at a time; each task's own story does not.
pub fn by_task(text: &str, key: impl Fn(&str) -> String) -> String {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        let k = key(line);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, lines)) => lines.push(line),
            None => groups.push((k, vec![line])),
        }
    }
    let lines: Vec<&str> = groups.into_iter().flat_map(|(_, l)| l).collect();
    lines.join("\n") + "\n"
}

/// A run's stderr with the live view's lines (those before the summary)
/// in one order on every run: what the merge of a task reports (`merged`,
/// `conflict`, `conflicted`, `unmerged`) right after that task's last line
/// before it, every other line where it came. Merges run on the
/// dispatcher's writer thread, and a dependent starts from its
/// dependency's result, not its merge: whether a task's merge or the next
/// task's start is said first differs from run to run even one task at a
/// time.
pub fn stable_stderr(stderr: &str) -> String {
    let (live, summary) = match stderr.find("\n\nrun ") {
        Some(at) => stderr.split_at(at + 1),
        None => (stderr, ""),
    };
    // `  STATUS     TASK ...`: the task a line is about.
    let task = |line: &str| -> Option<String> {
        line.starts_with("  ")
            .then(|| line.split_whitespace().nth(1).map(str::to_string))
            .flatten()
    };
    let mut lines: Vec<&str> = Vec::new();
    for line in live.lines() {
        let merging = matches!(
            line.split_whitespace().next(),
            Some("merged" | "conflict" | "conflicted" | "unmerged")
        );
        let after = match (merging, task(line)) {
            (true, Some(id)) => lines
                .iter()
                .rposition(|l| task(l).as_deref() == Some(id.as_str())),
            _ => None,
        };
        match after {
            Some(at) => lines.insert(at + 1, line),
            None => lines.push(line),
        }
    }
    lines.join("\n") + "\n" + summary
}

/// Asserts that `log` (a task's output log) ends with the line saying that
/// `dropped` bytes past `limit` were dropped.
#[track_caller]
pub fn assert_truncated(log: &str, dropped: u64, limit: u64) {
    let note = format!(
        "[swarm: output truncated: {dropped} more bytes were dropped (the limit is {limit} bytes, `max_output` in the plan)]\n"
    );
    assert!(
        log.ends_with(&note),
        "expected the log to end with {note:?}, it ends with {:?}",
        &log[log.len().saturating_sub(200)..]
    );
}

/// Waits up to 20 s for `ready`, polling; panics naming `what` otherwise.
#[track_caller]
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Sends `signal` to the child process (a `swarm` under test).
pub fn signal(child: &std::process::Child, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, signal).expect("signal the child");
}

/// `toml` with `allow_overlap = true` in its `[defaults]` (see
/// [`TestRepo::plan`]); unchanged if it says `allow_overlap` already.
pub fn allow_overlap(toml: &str) -> String {
    // One task cannot overlap another; such plans stay as written (many
    // are bad input whose messages quote their last lines).
    if toml.contains("allow_overlap")
        || (toml.matches("[[task]]").count() < 2 && !toml.contains("matrix"))
    {
        return toml.to_string();
    }
    match toml.find("\n[defaults]") {
        Some(at) => {
            let end = toml[at + 1..].find('\n').map_or(toml.len(), |e| at + 1 + e);
            format!("{}\nallow_overlap = true{}", &toml[..end], &toml[end..])
        }
        None if toml.starts_with("[defaults]") => {
            toml.replacen("[defaults]", "[defaults]\nallow_overlap = true", 1)
        }
        None => format!("{toml}\n\n[defaults]\nallow_overlap = true\n"),
    }
}

/// The real agent CLI `name` (`claude`, `codex`) from the npm registry,
/// pinned in tests/agent-clis/package.json: installed into
/// target/agent-clis on first use (CI does it up front in .ci/run).
pub fn agent_cli(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dest = root.join("target/agent-clis");
    let status = Command::new(root.join("tests/agent-clis/install.sh"))
        .arg(&dest)
        .status()
        .expect("run tests/agent-clis/install.sh (needs npm)");
    assert!(status.success(), "installing the agent CLIs failed");
    let program = dest.join("node_modules/.bin").join(name);
    assert!(program.exists(), "{} is missing", program.display());
    program
}

/// The real Python tool `name` (`pytest`) from PyPI, pinned in
/// tests/python-tools/requirements.txt: installed into a virtual
/// environment in target/python-tools on first use (CI does it up front in
/// .ci/run).
/// Asserts that the JUnit file `junit` is valid against the JUnit schema
/// pytest's own tests check with (Jenkins' `junit-10.xsd`, installed with
/// the Python tools), by a validator from PyPI.
pub fn assert_valid_junit(junit: &Path) {
    // venv/bin/pytest: the venv's own python beside it (not canonical,
    // which would be the system's, without the validator).
    let bin = python_tool("pytest").parent().unwrap().to_path_buf();
    let xsd = bin.parent().unwrap().parent().unwrap().join("junit-10.xsd");
    let valid = Command::new(bin.join("python"))
        .args([
            "-c",
            "import sys, xmlschema; xmlschema.XMLSchema(sys.argv[1]).validate(sys.argv[2])",
        ])
        .arg(&xsd)
        .arg(junit)
        .output()
        .unwrap();
    assert!(
        valid.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&valid.stderr),
        std::fs::read_to_string(junit).unwrap_or_default()
    );
}

pub fn python_tool(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dest = root.join("target/python-tools");
    let status = Command::new(root.join("tests/python-tools/install.sh"))
        .arg(&dest)
        .status()
        .expect("run tests/python-tools/install.sh (needs python3 with venv)");
    assert!(status.success(), "installing the Python tools failed");
    let program = dest.join("venv/bin").join(name);
    assert!(program.exists(), "{} is missing", program.display());
    program.canonicalize().unwrap()
}
