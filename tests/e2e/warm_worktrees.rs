//! Warm worktrees: a task's worktree kept between runs at one path and
//! brought to the new base by git, so that cargo rebuilds only what
//! changed; a failed attempt's work is on its ref before the worktree is
//! reset; `swarm clean --warm` frees them; `warm = false` opts out; one
//! git cannot bring to the base, or another run holds, is never used (a
//! fresh worktree instead, with a warning); `swarm resume` takes back the
//! one its interrupted run left.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use crate::resume::kill9;
use crate::support::{TestRepo, redact, snapshot_settings, wait_until};
use crate::toolchains::{cargo_home, swarm_with_cargo};

fn crate_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "Cargo.toml",
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    repo.write("src/lib.rs", "pub fn one() -> u32 {\n    1\n}\n");
    repo.write(".gitignore", "target/\nCargo.lock\n");
    repo.commit_all("a crate");
    repo
}

fn log(repo: &TestRepo, run: &str, task: &str) -> String {
    std::fs::read_to_string(
        repo.path()
            .join(format!(".swarm/runs/{run}/logs/{task}/1.err")),
    )
    .unwrap_or_default()
}

#[test]
fn a_second_run_builds_only_what_changed_in_the_same_worktree() {
    let repo = crate_repo();
    let cargo = cargo_home(&repo);
    let plan = repo.plan(
        "w.toml",
        "[[task]]\nid = \"build\"\nrun = '''\nmkdir -p target && echo leftover > target/mine\n\
         test ! -e nested && mkdir nested && git -C nested init -q && echo x > nested/stray.txt\n\
         cargo build --offline\npwd >&2\n'''\n",
    );
    let mut places = Vec::new();
    for (run, compiles) in [("one", true), ("two", false)] {
        let out = swarm_with_cargo(
            &repo,
            &cargo,
            &["run", plan.to_str().unwrap(), "--name", run],
        );
        assert_eq!(out.code, 0, "{}\n{}", out.stderr, log(&repo, run, "build"));
        let text = log(&repo, run, "build");
        assert_eq!(
            text.contains("Compiling tiny"),
            compiles,
            "run {run}:\n{text}"
        );
        places.push(text.lines().last().unwrap_or_default().to_string());
    }
    // Run one's untracked files, a repository it made inside included,
    // were gone for run two: its command checks (`test ! -e nested`).
    // The same path both times: the task's warm worktree.
    assert_eq!(places[0], places[1]);
    assert!(places[0].ends_with("/.warm/build"), "{}", places[0]);
    // What the task committed is its result; ignored build output stays
    // in the worktree, untracked files were removed before the next run.
    let worktree = std::path::Path::new(&places[0]);
    assert!(worktree.join("target/mine").exists());

    // The base moved: the changed file is built again, in the same place.
    repo.write("src/lib.rs", "pub fn one() -> u32 {\n    2 - 1\n}\n");
    repo.commit_all("change the crate");
    let out = swarm_with_cargo(
        &repo,
        &cargo,
        &["run", plan.to_str().unwrap(), "--name", "three"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = log(&repo, "three", "build");
    assert!(text.contains("Compiling tiny"), "{text}");
    assert_eq!(
        std::fs::read_to_string(worktree.join("src/lib.rs")).unwrap(),
        "pub fn one() -> u32 {\n    2 - 1\n}\n"
    );

    // `swarm clean --warm` frees it.
    let clean = repo.swarm(&["clean", "--all", "--warm"]);
    clean.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&clean.stdout, &repo), @"
    run one: removed 0 worktrees ([SIZE]) and 0 tmp directories ([SIZE])
    run three: removed 0 worktrees ([SIZE]) and 0 tmp directories ([SIZE])
    run two: removed 0 worktrees ([SIZE]) and 0 tmp directories ([SIZE])
    kept [SIZE] of build caches (swarm clean --caches frees them):
      [WORKTREES]/.cache/cargo-target ([SIZE])
    removed [WORKTREES]/.warm/build ([SIZE])
    removed [WORKTREES]/.warm/.tmp/build ([SIZE])
    freed [SIZE]
    ")
    });
    assert!(!worktree.exists());
}

#[test]
fn a_retry_resets_the_warm_worktree_after_its_failed_attempt_is_on_a_ref() {
    let repo = crate_repo();
    let plan = repo.plan(
        "r.toml",
        "[[task]]\nid = \"flaky\"\nretries = 1\nrun = '''\n\
         if [ \"$SWARM_ATTEMPT\" = 1 ]; then echo first > first.txt; exit 1; fi\n\
         test ! -e first.txt && echo second > second.txt\n'''\n",
    );
    let run = repo.run_plan(&plan, &["--name", "r"]);
    run.assert_code(0);
    // The first attempt's work is on its ref; the second started clean.
    assert_eq!(repo.show("refs/swarm/r/flaky.1", "first.txt"), "first");
    assert_eq!(repo.show("swarm/r", "second.txt"), "second");
}

#[test]
fn warm_false_gets_a_fresh_worktree_that_goes_when_the_task_succeeds() {
    let repo = crate_repo();
    let plan = repo.plan(
        "c.toml",
        "[[task]]\nid = \"cold\"\nwarm = false\nrun = \"pwd > where.txt\"\n",
    );
    repo.run_plan(&plan, &["--name", "c"]).assert_code(0);
    let place = repo.show("swarm/c", "where.txt");
    assert!(place.ends_with("/c/cold"), "{place}");
    assert!(!std::path::Path::new(&place).exists());
}

#[test]
fn what_a_task_plants_in_its_warm_worktree_steers_nothing_of_the_next_run() {
    let repo = TestRepo::new();
    repo.write("src/x.txt", "one\ntwo\n");
    repo.commit_all("a file");
    // Run one's task plants an attribute file (CRLF on checkout) and an
    // ignore file that ignores itself and everything new beside it.
    let planting = repo.plan(
        "p.toml",
        "[[task]]\nid = \"t\"\nrun = '''\nprintf '* eol=crlf\\n' > src/.gitattributes\n\
         printf '*\\n' > src/.gitignore\necho kept > src/persist.txt\n'''\n",
    );
    repo.run_plan(&planting, &["--name", "one"]).assert_code(0);
    repo.write("src/x.txt", "one\ntwo\nthree\n");
    repo.commit_all("change the file");
    // Run two's task, with the same id, writes a new file beside them.
    let plain = repo.plan(
        "q.toml",
        "[[task]]\nid = \"t\"\nrun = \"test ! -e src/persist.txt && echo new > src/new.rs\"\n",
    );
    let run = repo.run_plan(&plain, &["--name", "two"]);
    run.assert_code(0);
    // Its new file is its work, and the tracked file is as committed.
    assert_eq!(repo.show("swarm/two", "src/new.rs"), "new");
    let x = repo.git(&["cat-file", "-p", "swarm/two:src/x.txt"]);
    assert!(!x.contains('\r'), "{x:?}");
    let tree = repo.git(&["ls-tree", "-r", "--name-only", "refs/swarm/two/t"]);
    assert!(
        !tree.contains(".gitignore") && !tree.contains(".gitattributes"),
        "{tree}"
    );
}

/// A `.gitattributes` a task left in a directory its own `.gitignore`
/// hid from the scrub (the tracked `.gitignore`, changed), which the next
/// run's base then adds, is not read when the warm worktree is moved
/// there: with a filter driver in the person's configuration, the reset
/// ran it, unconfined, on the files it checked out there (an attack
/// review's proof; without `--attr-source` on the reset the marker is
/// made).
#[test]
fn an_attributes_file_a_task_hid_in_its_warm_worktree_runs_no_filter_on_the_next_base() {
    let repo = TestRepo::new();
    repo.write(".gitignore", "target/\n");
    repo.write("a.txt", "a\n");
    repo.commit_all("ignore target");
    let marker = repo.path().with_extension("filter-ran");
    let smudge = format!("touch {}; cat", marker.display());
    repo.git(&["config", "filter.person.smudge", &smudge]);
    repo.git(&["config", "filter.person.clean", "cat"]);
    let planting = repo.plan(
        "p.toml",
        "[[task]]\nid = \"t\"\nrun = '''\nprintf 'newdir/\\n' >> .gitignore\n\
         mkdir -p newdir && printf '* filter=person\\n' > newdir/.gitattributes\n'''\n",
    );
    repo.run_plan(&planting, &["--name", "one"]).assert_code(0);
    repo.write("newdir/file.txt", "new\n");
    repo.commit_all("a new directory");
    let plain = repo.plan(
        "q.toml",
        "[[task]]\nid = \"t\"\nrun = \"cat newdir/file.txt > seen.txt\"\n",
    );
    repo.run_plan(&plain, &["--name", "two"]).assert_code(0);
    assert_eq!(repo.show("swarm/two", "seen.txt"), "new");
    assert!(
        !marker.exists(),
        "the person's filter driver ran on a task's attributes"
    );
}

/// A tracked file no task changed keeps its modification time from run to
/// run (cargo, make and Python's bytecode go by it), though swarm, as root,
/// hands the worktree to the sandbox's user and takes it back, which
/// changes every file's ctime: git took that as a change, every file was
/// written again, and cargo built the crate again in every warm worktree
/// (without `Worktrees::refresh` the last assertion fails, checked). A
/// file a task changed but left its size and modification time as they
/// were is still written again: git compares its content.
#[test]
fn files_no_task_changed_keep_their_modification_times_in_a_warm_worktree() {
    let repo = TestRepo::new();
    repo.write("kept.txt", "kept\n");
    repo.write("other.txt", "A\n");
    repo.commit_all("two files");
    let plan = repo.plan(
        "m.toml",
        "[[task]]\nid = \"t\"\nrun = '''\ncat other.txt >&2\n\
         if [ \"$SWARM_RUN\" = four ]; then m=$(stat -c %y other.txt); \
         printf 'B\\n' > other.txt; touch -d \"$m\" other.txt; fi\n'''\n",
    );
    let mtime = |path: &Path| std::fs::metadata(path).unwrap().modified().unwrap();
    let kept = repo.worktree_home().join(".warm/t/kept.txt");
    let mut times = Vec::new();
    for run in ["one", "two", "three", "four", "five"] {
        repo.run_plan(&plan, &["--name", run]).assert_code(0);
        times.push(mtime(&kept));
        let err = log(&repo, run, "t");
        // Each run starts from the committed file, run five too.
        assert_eq!(err.lines().next(), Some("A"), "run {run}: {err}");
        // git compares a ctime's whole seconds: run two's hand-over in a
        // second after the one run one's worktree was written in, as runs
        // apart are.
        if run == "one" {
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
    }
    assert!(times.windows(2).all(|t| t[0] == t[1]), "{times:?}");
}

/// As root, a sandboxed task's worktree is shown to it through an
/// idmapped copy (where the kernel and file system take one): it owns its
/// files there and changes them, while on disk every file stays root's
/// and one it did not touch keeps its ctime (nothing handed over and
/// back).
#[test]
fn a_worktree_shown_idmapped_stays_roots_on_disk_and_keeps_its_ctimes() {
    use std::os::unix::fs::MetadataExt;
    let repo = TestRepo::new();
    if !nix::unistd::geteuid().is_root() || !crate::sandbox::sandbox_available(&repo) {
        return;
    }
    repo.write("kept.txt", "kept\n");
    repo.write("edited.txt", "A\n");
    repo.commit_all("two files");
    let plan = repo.plan(
        "i.toml",
        "[[task]]\nid = \"t\"\nrun = '''\nstat -c '%u %g' edited.txt >&2\n\
         echo B >> edited.txt && echo new > made.txt\n'''\n",
    );
    // A first run makes the warm worktree; the second is the one looked at.
    repo.run_plan(&plan, &["--name", "one"]).assert_code(0);
    let home = repo.worktree_home().join(".warm/t");
    let ctime = |name: &str| {
        let meta = std::fs::symlink_metadata(home.join(name)).unwrap();
        (meta.ctime(), meta.ctime_nsec())
    };
    let before = ctime("kept.txt");
    std::thread::sleep(std::time::Duration::from_millis(20));
    repo.run_plan(&plan, &["--name", "two"]).assert_code(0);
    assert_eq!(log(&repo, "two", "t").trim(), "65534 65534");
    assert_eq!(repo.git(&["show", "swarm/two:edited.txt"]), "A\nB");
    for name in ["kept.txt", "edited.txt", "made.txt"] {
        let meta = std::fs::symlink_metadata(home.join(name)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "{name} on disk");
    }
    assert_eq!(ctime("kept.txt"), before, "a file the task did not touch");
}

/// A task that replaces a tracked directory by a link to a directory
/// outside, holding a file of the tracked one's name and content: the next
/// run's refresh and reset, as root, neither take that file for the
/// tracked one nor write through the link; the next task finds the
/// directory as committed, and the file outside is as it was.
#[test]
fn a_link_a_task_leaves_for_a_tracked_directory_is_not_followed_by_the_next_runs_reset() {
    let repo = TestRepo::new();
    repo.write("sub/x.txt", "hi\n");
    repo.commit_all("a directory");
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("x.txt");
    std::fs::write(&target, "hi\n").unwrap();
    let before = std::fs::metadata(&target).unwrap().modified().unwrap();
    let plan = repo.plan(
        "l.toml",
        &format!(
            "[[task]]\nid = \"t\"\nrun = '''\ntest -L sub && echo link >&2 || cat sub/x.txt >&2\n\
             if [ \"$SWARM_RUN\" = one ]; then rm -r sub; ln -s {} sub; fi\n'''\n",
            outside.path().display()
        ),
    );
    for run in ["one", "two"] {
        repo.run_plan(&plan, &["--name", run]).assert_code(0);
        assert_eq!(log(&repo, run, "t").lines().next(), Some("hi"), "run {run}");
        // Run two's refresh then finds every file's ctime changed.
        if run == "one" {
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "hi\n");
    assert_eq!(
        std::fs::metadata(&target).unwrap().modified().unwrap(),
        before
    );
    let sub = repo.worktree_home().join(".warm/t/sub");
    assert!(sub.symlink_metadata().unwrap().is_dir());
}

/// A repository whose `cache/` is ignored build output: what a warm
/// worktree keeps from one run to the next, and a fresh one lacks.
fn cache_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".gitignore", "cache/\n");
    repo.commit_all("ignore the build cache");
    repo
}

/// A task `t` that says whether it found the build output a previous run
/// left (`seen.txt`: `warm` or `fresh`), leaves it for the next, and
/// prints where it ran.
const SEES: &str = "[[task]]\nid = \"t\"\nrun = '''\n\
    if [ -e cache/built ]; then echo warm; else echo fresh; fi > seen.txt\n\
    mkdir -p cache && echo built > cache/built\npwd >&2\n'''\n";

/// Where run `run`'s task `t` ran in attempt `attempt` (the last line of
/// its log), and what it saw (`warm` or `fresh`).
#[track_caller]
fn ran(repo: &TestRepo, run: &str, attempt: u32) -> (String, String) {
    let err = std::fs::read_to_string(
        repo.path()
            .join(format!(".swarm/runs/{run}/logs/t/{attempt}.err")),
    )
    .unwrap_or_default();
    let place = err.lines().last().unwrap_or_default().to_string();
    (place, repo.show(&format!("swarm/{run}"), "seen.txt"))
}

/// The warm worktree of task `t`, and git's record of it (the directory
/// under `.git/worktrees/` its `.git` file names).
fn warm_t(repo: &TestRepo) -> (PathBuf, PathBuf) {
    let path = repo.worktree_home().join(".warm/t");
    let link = std::fs::read_to_string(path.join(".git")).unwrap();
    let admin = link.trim().strip_prefix("gitdir: ").unwrap().into();
    (path, admin)
}

/// A warm worktree git cannot bring to the new base (its index corrupt:
/// `git clean` and `git reset` fail on it) or has no record of (its
/// `.git/worktrees/` entry gone) is replaced by a fresh one at the same
/// path, with a warning, and the run succeeds; the replacement is warm
/// for the run after. The control runs show a warm worktree keeps the
/// build output a fresh one lacks. With either fallback of `bring_to`'s
/// match in `run/local/task.rs` returning an error instead, run `three`
/// (a failed reset) or run `five` (no record) fails (checked).
#[test]
fn a_warm_worktree_git_cannot_bring_to_the_base_is_replaced_by_a_fresh_one() {
    let repo = cache_repo();
    let plan = repo.plan("w.toml", SEES);
    let run = |name: &str| {
        let out = repo.run_plan(&plan, &["--name", name]);
        out.assert_code(0);
        out.stderr
    };
    run("one");
    // The control: the second run finds the first one's build output.
    run("two");
    let (path, admin) = warm_t(&repo);
    let where_ = path.display().to_string();
    assert_eq!(ran(&repo, "one", 1), (where_.clone(), "fresh".into()));
    assert_eq!(ran(&repo, "two", 1), (where_.clone(), "warm".into()));

    // A corrupt index: the reset fails.
    std::fs::write(admin.join("index"), "not an index\n").unwrap();
    let stderr = run("three");
    // git's own words (`index file smaller than expected`, `index file
    // corrupt`) say why.
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&warnings(&stderr), &repo), @"[TIMESTAMP]  WARN failed to bring its warm worktree to the base; making it again task=t error=remove untracked files of worktree [WORKTREES]/.warm/t: fatal: [TMP]/repo/.git/worktrees/t/index: index file smaller than expected"));
    assert_eq!(ran(&repo, "three", 1), (where_.clone(), "fresh".into()));
    assert_eq!(repo.show("swarm/three", "src/lib.txt"), "fn main");
    // The fresh one is warm for the next run.
    let stderr = run("four");
    assert!(!stderr.contains("making it again"), "{stderr}");
    assert_eq!(ran(&repo, "four", 1), (where_.clone(), "warm".into()));

    // Git's record of it gone (what a `git worktree prune` of another
    // tool, or a person, may do): made again too.
    let (_, admin) = warm_t(&repo);
    std::fs::remove_dir_all(&admin).unwrap();
    let stderr = run("five");
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&warnings(&stderr), &repo), @"[TIMESTAMP]  WARN git has no record of its warm worktree; making it again task=t path=[WORKTREES]/.warm/t"));
    assert_eq!(ran(&repo, "five", 1), (where_.clone(), "fresh".into()));
    let list = repo.git(&["worktree", "list", "--porcelain"]);
    assert!(list.contains(&format!("worktree {where_}\n")), "{list}");
}

/// The warnings in a run's stderr: what it says of its warm worktree (the
/// rest says how many tasks run at once, the machine's CPU count).
fn warnings(stderr: &str) -> String {
    let said: Vec<&str> = stderr.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(!said.is_empty(), "no warning in:\n{stderr}");
    said.join("\n")
}

/// A `swarm` started in the background, killed if the test ends before
/// it does (a failed assertion would leave its task waiting for ever).
pub(crate) struct Background(pub(crate) Option<Child>);

impl Background {
    pub(crate) fn take(&mut self) -> Child {
        self.0.take().unwrap()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            kill9(&mut child);
        }
    }
}

/// Waits for `file` to appear (what a task writes when it got there).
#[track_caller]
pub(crate) fn wait_for(file: &Path) {
    wait_until(&format!("{} to appear", file.display()), || file.exists());
}

/// Two runs never share a warm worktree: while one run's task holds it,
/// another run's task with the same id gets a fresh worktree of its own
/// (its build output absent), with a warning, and succeeds; the holder
/// finds the worktree as it left it. With `WarmDir::lease` not refusing a
/// lease another process holds, the second run's task is put in the same
/// worktree, without the warning, and the test fails (checked).
#[test]
fn a_second_run_gets_a_fresh_worktree_while_the_first_holds_the_warm_one() {
    let repo = cache_repo();
    let quick = repo.plan("q.toml", SEES);
    repo.run_plan(&quick, &["--name", "zero"]).assert_code(0);
    let (path, _) = warm_t(&repo);
    // Run `a`'s task holds the warm worktree until the test says go.
    let hold = repo.plan(
        "h.toml",
        "[[task]]\nid = \"t\"\nrun = '''\n\
         if [ -e cache/built ]; then echo warm; else echo fresh; fi > seen.txt\n\
         touch cache/holding\nwhile [ ! -e cache/go ]; do sleep 0.05; done\npwd >&2\n'''\n",
    );
    let mut first = Background(Some(
        repo.swarm_cmd(&["run", hold.to_str().unwrap(), "--name", "a"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    wait_for(&path.join("cache/holding"));

    let second = repo.run_plan(&quick, &["--name", "b"]);
    second.assert_code(0);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&warnings(&second.stderr), &repo), @"[TIMESTAMP]  WARN its warm worktree is in use by another run; it gets a fresh worktree task=t"));
    let (place, seen) = ran(&repo, "b", 1);
    assert_eq!(seen, "fresh");
    assert!(place.ends_with("/b/t"), "{place}");
    // Its fresh worktree went with its success; the held one was not
    // touched.
    assert!(!Path::new(&place).exists());
    assert!(path.join("cache/holding").exists());

    std::fs::write(path.join("cache/go"), "").unwrap();
    let first: crate::support::Run = first.take().wait_with_output().unwrap().into();
    first.assert_code(0);
    assert_eq!(
        ran(&repo, "a", 1),
        (path.display().to_string(), "warm".into())
    );
}

/// The same of a task's own build cache: while one run's attempt uses it
/// (its record is a lock), the same task id in another run at once builds
/// in an empty cache of its own, in its run's tmp, and the first finds its
/// cache as it left it (the two shared one before).
#[test]
fn a_second_run_builds_in_a_cache_of_its_own_while_the_first_holds_the_tasks() {
    let repo = TestRepo::new();
    let cache = repo.worktree_home().join(".cache/cargo-target/t");
    let hold = repo.plan(
        "h.toml",
        "[[task]]\nid = \"t\"\nwarm = false\nrun = '''\n\
         touch \"$CARGO_TARGET_DIR/holding\"\n\
         while [ ! -e \"$CARGO_TARGET_DIR/go\" ]; do sleep 0.05; done\n\
         ls -A \"$CARGO_TARGET_DIR\" > seen.txt\n'''\n",
    );
    let quick = repo.plan(
        "q.toml",
        "[[task]]\nid = \"t\"\nwarm = false\nrun = '''\n\
         ls -A \"$CARGO_TARGET_DIR\" > seen.txt\necho \"$CARGO_TARGET_DIR\" >> seen.txt\n'''\n",
    );
    let mut first = Background(Some(
        repo.swarm_cmd(&["run", hold.to_str().unwrap(), "--name", "a"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    wait_for(&cache.join("holding"));
    repo.run_plan(&quick, &["--name", "b"]).assert_code(0);
    let own = repo.path().join(".swarm/runs/b/tmp/t.caches/cargo-target");
    assert_eq!(repo.show("swarm/b", "seen.txt"), own.display().to_string());
    std::fs::write(cache.join("go"), "").unwrap();
    let first: crate::support::Run = first.take().wait_with_output().unwrap().into();
    first.assert_code(0);
    assert_eq!(repo.show("swarm/a", "seen.txt"), "go\nholding");
}

/// A coordinator killed mid-attempt leaves its task's warm worktree
/// marked in use: another run's task gets a fresh worktree (with a
/// warning naming the interrupted run), and `swarm resume` of that run
/// commits what the worktree holds to the attempt's ref, then runs the
/// task again in the same warm worktree, its build output kept and the
/// interrupted attempt's untracked work cleaned away. Checked: with
/// `keep_leftovers` (`run/resume.rs`) removing the warm worktree instead
/// of releasing it, the resumed task runs fresh (`seen.txt` says so); not
/// finding the warm worktree at all, it keeps no `t.1` ref.
#[test]
fn resume_takes_back_the_warm_worktree_its_interrupted_run_left() {
    let repo = cache_repo();
    let plan = repo.plan(
        "r.toml",
        "[[task]]\nid = \"t\"\nrun = '''\n\
         if [ -e cache/built ]; then\n\
           test ! -e work.txt && echo warm > seen.txt\n\
         elif [ \"$SWARM_ATTEMPT\" = 1 ]; then\n\
           mkdir -p cache && echo built > cache/built\n\
           echo interrupted > work.txt && touch cache/ready\n\
           sleep 600\n\
         else\n\
           echo fresh > seen.txt\n\
         fi\n\
         pwd >&2\n'''\n",
    );
    let path = repo.worktree_home().join(".warm/t");
    let mut child = Background(Some(
        repo.swarm_cmd(&["run", plan.to_str().unwrap(), "--name", "r"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    wait_for(&path.join("cache/ready"));
    kill9(&mut child.take());

    // What the killed run left is on no ref yet: another run's task with
    // the same id does not reset it, it gets a fresh worktree.
    let quick = repo.plan("q.toml", SEES);
    let other = repo.run_plan(&quick, &["--name", "other"]);
    other.assert_code(0);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&warnings(&other.stderr), &repo), @"[TIMESTAMP]  WARN its warm worktree holds what an interrupted run left (`swarm resume` of that run keeps it, `swarm clean --warm` frees it); it gets a fresh worktree task=t left_by=r"));
    let (place, seen) = ran(&repo, "other", 1);
    assert_eq!(seen, "fresh");
    assert!(place.ends_with("/other/t"), "{place}");
    assert_eq!(
        std::fs::read_to_string(path.join("work.txt")).unwrap(),
        "interrupted\n"
    );

    let resumed = repo.swarm(&["resume", "r"]);
    resumed.assert_code(0);
    // The interrupted attempt's work is on its ref; the task ran again in
    // the same worktree, its build output there, its untracked work gone.
    assert_eq!(repo.show("refs/swarm/r/t.1", "work.txt"), "interrupted");
    let (place, seen) = ran(&repo, "r", 2);
    assert_eq!(seen, "warm", "{}", resumed.stderr);
    assert_eq!(place, path.display().to_string());
    let tree = repo.git(&["ls-tree", "-r", "--name-only", "swarm/r"]);
    assert!(!tree.contains("work.txt"), "{tree}");
}

/// A sandboxed task in its warm worktree finds its `TMPDIR` as it left it
/// (jest's and other tools' caches live there), in a place of its own
/// beside the worktree, while its HOME is fresh every time; a test report
/// at `$TMPDIR/...` that the last run left is gone before the next starts
/// (never read as the new run's), a task with `warm = false` starts with
/// an empty tmp every run, and so does an attempt after one that failed.
/// `swarm clean --warm` removes the kept tmp with the worktree.
#[test]
fn a_warm_worktrees_tmpdir_is_kept_for_its_task_and_its_stale_report_is_not_read() {
    let repo = TestRepo::new();
    repo.write("README.md", "# demo\n");
    repo.commit_all("a file");
    let script = r#"
n=$(cat "$TMPDIR/count" 2>/dev/null || echo 0)
echo $((n + 1)) > "$TMPDIR/count"
test ! -e "$HOME/home-mark" && touch "$HOME/home-mark"
test "$HOME" != "$TMPDIR"
echo "count $((n + 1)) tmp $TMPDIR" >&2
if [ "$SWARM_RUN" = one ]; then
  printf '<testsuite name="s" tests="1"><testcase name="a"/></testsuite>\n' > "$TMPDIR/report.xml"
else
  test ! -e "$TMPDIR/report.xml"
fi
"#;
    let plan = repo.plan(
        "k.toml",
        &format!(
            "[defaults]\njunit = \"$TMPDIR/report.xml\"\n\n\
             [[task]]\nid = \"warm\"\nrun = '''{script}'''\n\n\
             [[task]]\nid = \"cold\"\nwarm = false\nallow_overlap = true\nrun = '''{script}'''\n"
        ),
    );
    // What each run's tasks said (their count and tmp), and the warnings
    // of the warm one.
    let mut said = String::new();
    for run in ["one", "two"] {
        repo.run_plan(&plan, &["--name", run]).assert_code(0);
        for task in ["warm", "cold"] {
            said.push_str(&format!("run {run}, {task}: {}", log(&repo, run, task)));
        }
        let report = repo.report();
        let warm = crate::support::task(&report, "warm");
        match run {
            "one" => assert_eq!(warm["tests"]["passed"], 1, "{warm}"),
            _ => assert!(warm["tests"].is_null(), "{warm}"),
        }
        for warning in warm["warnings"].as_array().into_iter().flatten() {
            said.push_str(&format!(
                "run {run}, warm warns: {}\n",
                warning.as_str().unwrap()
            ));
        }
    }
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&said, &repo), @r#"
    run one, warm: count 1 tmp [WORKTREES]/.warm/.tmp/warm
    run one, cold: count 1 tmp [TMP]/repo/.swarm/runs/one/tmp/cold
    run one, warm warns: changed nothing: it succeeded without changing a file (if it only checks, `isolation = "readonly"` says so)
    run two, warm: count 2 tmp [WORKTREES]/.warm/.tmp/warm
    run two, cold: count 1 tmp [TMP]/repo/.swarm/runs/two/tmp/cold
    run two, warm warns: attempt 1: no test report: the task wrote no `$TMPDIR/report.xml` (the plan's `junit`)
    run two, warm warns: changed nothing: it succeeded without changing a file (if it only checks, `isolation = "readonly"` says so)
    "#));
    let kept = said_path(&log(&repo, "two", "warm"));
    assert!(kept.join("count").is_file());
    // Kept only after an attempt that passed: a first attempt that finds
    // run two's tmp, leaves something in it and fails is retried with an
    // empty one.
    let retried = repo.plan(
        "r.toml",
        "[[task]]\nid = \"warm\"\nretries = 1\nrun = '''\n\
         if [ \"$SWARM_ATTEMPT\" = 1 ]; then test -e \"$TMPDIR/count\" && touch \"$TMPDIR/poison\"; exit 1; fi\n\
         test ! -e \"$TMPDIR/poison\" && test ! -e \"$TMPDIR/count\"\n'''\n",
    );
    repo.run_plan(&retried, &["--name", "three"]).assert_code(0);
    let report = repo.report();
    assert_eq!(
        crate::support::task(&report, "warm")["attempts"],
        2,
        "{report}"
    );
    // Nor after one whose command passed but whose result did not (a file
    // outside what it may write): its retry starts with an empty tmp too.
    let outside = repo.plan(
        "o.toml",
        "[[task]]\nid = \"warm\"\nretries = 1\ncreates = [\"ok.txt\"]\nrun = '''\n\
         if [ \"$SWARM_ATTEMPT\" = 1 ]; then touch \"$TMPDIR/poison\" stray.txt; exit 0; fi\n\
         test ! -e \"$TMPDIR/poison\" && touch ok.txt\n'''\n",
    );
    repo.run_plan(&outside, &["--name", "four"]).assert_code(0);
    assert_eq!(crate::support::task(&repo.report(), "warm")["attempts"], 2);
    repo.swarm(&["clean", "--all", "--warm"]).assert_code(0);
    assert!(!kept.exists(), "{}", kept.display());
}

/// The tmp path a task printed as `count N tmp PATH`.
fn said_path(log: &str) -> PathBuf {
    let line = log.lines().find(|l| l.starts_with("count ")).unwrap();
    PathBuf::from(line.split(" tmp ").nth(1).unwrap().trim())
}

/// A link a task leaves in its kept tmp where the plan's `$TMPDIR/...`
/// test report goes (here the report's directory, pointing at a directory
/// outside holding a report) is removed as a link before the next run:
/// what it pointed at is never removed or read.
#[test]
fn a_link_left_in_a_kept_tmp_where_the_report_goes_is_never_followed() {
    let repo = TestRepo::new();
    repo.write("README.md", "# demo\n");
    repo.commit_all("a file");
    let victim = repo.outside().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    let report = "<testsuite name=\"s\" tests=\"1\"><testcase name=\"a\"/></testsuite>\n";
    std::fs::write(victim.join("report.xml"), report).unwrap();
    let plan = repo.plan(
        "l.toml",
        &format!(
            "[[task]]\nid = \"t\"\njunit = \"$TMPDIR/r/report.xml\"\n\
             run = '''test \"$SWARM_RUN\" = one && ln -s {} \"$TMPDIR/r\" || test ! -e \"$TMPDIR/r\"'''\n",
            victim.display()
        ),
    );
    for run in ["one", "two"] {
        repo.run_plan(&plan, &["--name", run]).assert_code(0);
        let report = repo.report();
        let t = crate::support::task(&report, "t");
        assert!(t["tests"].is_null(), "{run}: {t}");
    }
    assert_eq!(
        std::fs::read_to_string(victim.join("report.xml")).unwrap(),
        report
    );
}

/// A warm worktree's state (its ignored files, its kept tmp) goes only to
/// a later task of its lineage: one at the same base or a descendant of
/// it, with the same rights (network, variables, kind). A task of the
/// same id with other variables, or at a base that does not descend from
/// the last one (a branch's run after main's), starts from nothing (an
/// attack review's finding: warm state was keyed by the task id alone).
#[test]
fn warm_state_goes_only_to_a_later_task_of_its_lineage() {
    let repo = TestRepo::new();
    repo.write(".gitignore", "build/\n");
    repo.commit_all("a file");
    let script = "mkdir -p build\na=$(cat build/n 2>/dev/null || echo 0)\n\
                  b=$(cat \"$TMPDIR/n\" 2>/dev/null || echo 0)\n\
                  echo $((a + 1)) > build/n && echo $((b + 1)) > \"$TMPDIR/n\"\n\
                  echo \"$a $b\" > seen.txt\n";
    let plain = repo.plan(
        "p.toml",
        &format!("[[task]]\nid = \"t\"\nrun = '''\n{script}'''\n"),
    );
    let other = repo.plan(
        "o.toml",
        &format!("[[task]]\nid = \"t\"\nenv = {{ X = \"2\" }}\nrun = '''\n{script}'''\n"),
    );
    assert_eq!(
        seen_by_lineage(&repo, &plain, &other),
        "one: 0 0\ntwo: 1 1\nthree: 0 0\nfour: 1 1\nfive: 0 0"
    );
}

/// What `seen.txt` says after each of five runs: `plain` twice, `other`
/// (the same task id with other variables) twice, then `other` again at
/// the base amended (a commit that does not descend from the last run's).
fn seen_by_lineage(repo: &TestRepo, plain: &Path, other: &Path) -> String {
    let mut seen = Vec::new();
    for (run, plan) in [
        ("one", plain),
        ("two", plain),
        ("three", other),
        ("four", other),
    ] {
        repo.run_plan(plan, &["--name", run]).assert_code(0);
        seen.push(format!(
            "{run}: {}",
            repo.show(&format!("swarm/{run}"), "seen.txt")
        ));
    }
    repo.git(&[
        "commit",
        "-q",
        "--allow-empty",
        "--amend",
        "-m",
        "the commit again",
    ]);
    repo.run_plan(other, &["--name", "five"]).assert_code(0);
    seen.push(format!("five: {}", repo.show("swarm/five", "seen.txt")));
    seen.join("\n")
}

/// A task's own build cache (its cargo target directory) follows the same
/// rule when the task is not warm: kept for a later run of its lineage,
/// emptied for a task of the same id with other variables or at a base
/// that does not descend from the last run's (it was keyed by the task id
/// alone, warm or not). The lineage is the run's base: a task with a
/// dependency, which starts from that dependency's result (a new commit
/// every run), keeps its cache from one run to the next.
#[test]
fn a_tasks_own_build_cache_goes_only_to_a_later_task_of_its_lineage() {
    let repo = TestRepo::new();
    let script = "test -n \"$CARGO_TARGET_DIR\"\n\
                  a=$(cat \"$CARGO_TARGET_DIR/n\" 2>/dev/null || echo 0)\n\
                  echo $((a + 1)) > \"$CARGO_TARGET_DIR/n\" && echo \"$a\" > seen.txt\n";
    let plan = |env: &str| {
        format!(
            "[[task]]\nid = \"d\"\nrun = \"date +%s%N > d.txt\"\n\n\
             [[task]]\nid = \"t\"\ndeps = [\"d\"]\nwarm = false\n{env}run = '''\n{script}'''\n"
        )
    };
    let plain = repo.plan("p.toml", &plan(""));
    let other = repo.plan("o.toml", &plan("env = { X = \"2\" }\n"));
    assert_eq!(
        seen_by_lineage(&repo, &plain, &other),
        "one: 0\ntwo: 1\nthree: 0\nfour: 1\nfive: 0"
    );
}
