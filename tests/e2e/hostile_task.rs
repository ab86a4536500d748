//! A hostile task (issue 29, findings 5, 6 and 7's OOM half): what a task
//! leaves for the coordinator is read like hostile input (a link, a FIFO, a
//! sparse file of 768 MiB, a request of 50,000 tasks), a variant cannot set
//! its own score through a startup hook in its HOME, and a task killed by
//! its memory limit fails however its shell exits. Each hostile task is a
//! real command in the real sandbox, driven through the `swarm` binary.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::resume::journal;
use crate::sandbox::sandbox_available;
use crate::support::{TestRepo, redact, snapshot_settings, task, wait_until};

fn plan(repo: &TestRepo, name: &str, swarm: &str, tasks: &str) -> std::path::PathBuf {
    repo.plan(
        &format!("{name}.toml"),
        &format!("[swarm]\nname = \"{name}\"\n{swarm}\n\n[defaults]\ntimeout = \"60s\"\n\n{tasks}"),
    )
}

/// A `swarm` started in the background, killed if the test panics.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        crate::resume::kill9(&mut self.0);
    }
}

impl Running {
    fn start(repo: &TestRepo, plan: &Path) -> Self {
        let child = repo
            .swarm_cmd(&["run", plan.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        Self(child)
    }

    /// The peak resident memory of the process so far, in KiB.
    fn peak_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    }

    /// Waits for the end (at most `limit`), sampling the peak memory:
    /// (exit code, stdout, stderr, peak KiB).
    fn finish(mut self, limit: Duration) -> (i32, String, String, u64) {
        let started = Instant::now();
        let mut peak = 0;
        let code = loop {
            if let Some(kib) = self.peak_kib() {
                peak = peak.max(kib);
            }
            if let Some(status) = self.0.try_wait().unwrap() {
                break status.code().unwrap_or(-1);
            }
            assert!(
                started.elapsed() < limit,
                "swarm did not end within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let read = |r: Option<&mut dyn std::io::Read>| {
            let mut text = String::new();
            if let Some(r) = r {
                let _ = r.read_to_string(&mut text);
            }
            text
        };
        let out = read(self.0.stdout.as_mut().map(|s| s as &mut dyn std::io::Read));
        let err = read(self.0.stderr.as_mut().map(|s| s as &mut dyn std::io::Read));
        (code, out, err, peak)
    }
}

/// Every file of the run's directory and the repository's `.swarm`, and
/// every view of the run the user has, as one text.
fn everything_shown(repo: &TestRepo, run: &str) -> String {
    let mut all = String::new();
    let mut stack = vec![repo.path().join(".swarm")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let meta = entry.path().symlink_metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() && meta.len() < 8 << 20 {
                all.push_str(&String::from_utf8_lossy(
                    &std::fs::read(entry.path()).unwrap_or_default(),
                ));
            }
        }
    }
    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["logs", run, "p"],
    ] {
        let shown = repo.swarm(&args);
        all.push_str(&shown.stdout);
        all.push_str(&shown.stderr);
    }
    all
}

/// A task whose request is a link to a host file is refused without the
/// file being read: nothing of it shows anywhere.
///
/// With the fix reverted (`std::fs::read_to_string` of the request), the
/// coordinator follows the link as root and parses the host file: its key
/// `MARKER...` shows in the refusal ("unknown field"), the report, status
/// and the error log, and the reason says nothing of a link.
#[test]
fn a_request_linked_to_a_host_file_is_refused_unread() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let marker = format!(
        "HOSTSECRET{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let secret = repo.outside().join("secret.toml");
    std::fs::write(
        &secret,
        format!("{marker} = \"{marker}\"\n[[task]]\nid = \"x\"\n"),
    )
    .unwrap();
    let p = plan(
        &repo,
        "link",
        "",
        &format!(
            "[[task]]\nid = \"p\"\nrun = 'ln -s {} \"$SWARM_SUBTASKS\"'\n",
            secret.display()
        ),
    );
    let run = repo.run_plan(&p, &[]);
    run.assert_code(1);
    let report = repo.report();
    let p = task(&report, "p");
    assert_eq!(p["status"], "failed", "{report}");
    let reason = p["reason"].as_str().unwrap();
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(reason, &repo), @"its subtask request could not be read: [TMP]/repo/.swarm/runs/link/tmp/p/subtasks.toml is a symbolic link; swarm does not follow links where it reads or writes files it did not make"));
    let shown = everything_shown(&repo, "link");
    assert!(shown.contains("is a symbolic link"), "{shown}");
    for text in [&shown, &run.stdout, &run.stderr] {
        assert!(!text.contains(&marker), "the host file's key shows: {text}");
    }
}

/// A FIFO at `$SWARM_SUBTASKS` fails its attempt at once, and the run goes
/// on: another task still runs and `swarm` still answers SIGTERM.
///
/// With the fix reverted, the coordinator's dispatcher blocks for good in
/// `open` of the FIFO (no writer ever comes): `p` never finishes (the
/// wait below times out) and SIGTERM is never handled.
#[test]
fn a_fifo_request_fails_at_once_and_swarm_still_answers_sigterm() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let p = plan(
        &repo,
        "fifo",
        "on_failure = \"continue\"\nconcurrency = 2",
        "[[task]]\nid = \"p\"\nrun = 'mkfifo \"$SWARM_SUBTASKS\"'\n\n\
         [[task]]\nid = \"slow\"\ncreates = [\"slow.txt\"]\nrun = 'sleep 60; touch slow.txt'\n",
    );
    let running = Running::start(&repo, &p);
    wait_until("the FIFO's task to finish", || {
        journal(&repo, "fifo")
            .iter()
            .any(|e| e["event"] == "task_finished" && e["task"] == "p")
    });
    wait_until("the slow task to start", || {
        journal(&repo, "fifo")
            .iter()
            .any(|e| e["event"] == "task_started" && e["task"] == "slow")
    });
    crate::support::signal(&running.0, nix::sys::signal::Signal::SIGTERM);
    let (code, _, stderr, _) = running.finish(Duration::from_secs(20));
    assert_ne!(code, 0, "{stderr}");
    let report = repo.report();
    let p = task(&report, "p");
    assert_eq!(p["status"], "failed", "{report}");
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(p["reason"].as_str().unwrap(), &repo), @"its subtask request could not be read: [TMP]/repo/.swarm/runs/fifo/tmp/p/subtasks.toml is not a regular file (it is a named pipe)"));
    assert_eq!(task(&report, "slow")["status"], "cancelled", "{report}");
}

/// A sparse request of 768 MiB, 50,000 `[[task]]` tables and a matrix of
/// 50,000 combinations: each refused (by size, by `max_children` counted
/// before anything is resolved) quickly and in little memory.
///
/// With the fix reverted, the sparse file is read whole (the coordinator's
/// peak passes 768 MiB), the 50,000 empty tables are resolved and refused
/// by 50,000 "missing field `id`" errors instead of `max_children`, and the
/// matrix is expanded to 50,000 tasks before `max_children` is checked
/// (hundreds of MB): checked by reverting all of it at once, the run took
/// past the 30 s asserted, and the peak is past 768 MiB.
#[test]
fn huge_requests_are_refused_before_they_are_read_or_resolved() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let p = plan(
        &repo,
        "huge",
        "on_failure = \"continue\"\nconcurrency = 1",
        r#"[[task]]
id = "sparse"
run = 'truncate -s 768M "$SWARM_SUBTASKS"'

[[task]]
id = "tables"
run = 'yes "[[task]]" | head -n 50000 > "$SWARM_SUBTASKS"'

[[task]]
id = "matrix"
run = '''
python3 -c "print('[[task]]\nid = \"t-{a}-{b}\"\nrun = \"true\"\nmatrix = { a = %s, b = %s }' % (list(range(250)), list(range(200))))" > "$SWARM_SUBTASKS"
'''
"#,
    );
    let started = Instant::now();
    let (code, _, stderr, peak_kib) = Running::start(&repo, &p).finish(Duration::from_secs(60));
    assert_eq!(code, 1, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let report = repo.report();
    let reason = |id: &str| {
        let t = task(&report, id);
        assert_eq!(t["status"], "failed", "{report}");
        t["reason"].as_str().unwrap().to_string()
    };
    let mut reasons = String::new();
    for id in ["sparse", "tables", "matrix"] {
        let why = reason(id);
        assert!(why.len() < 1000, "{id}: {} bytes of reason", why.len());
        reasons.push_str(&format!("{id}: {why}\n"));
    }
    // Not through the snapshot filters: the sizes are the point here.
    insta::assert_snapshot!(redact(&reasons, &repo), @"
    sparse: its subtask request could not be read: [TMP]/repo/.swarm/runs/huge/tmp/sparse/subtasks.toml is 768 MiB, more than the 1 MiB a subtask request may be
    tables: its subtask request was refused: `max_children` is 8 and this would give `tables` 50000 subtasks: ask for fewer, larger subtasks (or raise `max_children` in [swarm])
    matrix: its subtask request was refused: `max_children` is 8 and this would give `matrix` 50000 subtasks: ask for fewer, larger subtasks (or raise `max_children` in [swarm])
    ");
    // The coordinator itself (a few tens of MiB) never held any of them.
    assert!(peak_kib > 0, "no peak sampled");
    assert!(
        peak_kib < 150 * 1024,
        "the coordinator's peak was {} MiB",
        peak_kib / 1024
    );
}

/// A variant that changes nothing but plants startup hooks in its HOME
/// (python's `usercustomize.py` and `sitecustomize.py`, which print 999 and
/// end python before the real scorer runs) and in its tmp, against one that
/// does the work: the scorer, run with a fresh HOME and TMPDIR of its own,
/// sees none of it, and the honest variant is picked.
///
/// With the fix reverted (the scorer's HOME is the variant's tmp), python
/// loads the planted hook, `cheat` scores 999 and is picked.
#[test]
fn a_variant_cannot_set_its_own_score_through_its_home() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    repo.write("n.txt", "1\n");
    repo.commit_all("n");
    let p = plan(
        &repo,
        "score",
        "",
        r#"[[task]]
id = "exp"
paths = ["n.txt"]
variants = { how = ["honest", "cheat"] }
run = '''
if [ {how} = honest ]; then echo 10 > n.txt; exit 0; fi
hook='import os, sys; print(999, flush=True); os._exit(0)'
site=$(python3 -c 'import site; print(site.getusersitepackages())')
mkdir -p "$site"
echo "$hook" > "$site/usercustomize.py"
echo "$hook" > "$site/sitecustomize.py"
echo "$hook" > "$TMPDIR/sitecustomize.py"
echo 'echo 999; exit 0' > "$HOME/.bashrc"
python3 -c 'print("planted")'
'''
score = "python3 -c 'print(open(\"n.txt\").read().strip())'"
pick = "max"
"#,
    );
    repo.run_plan(&p, &[]).assert_code(0);
    let report = repo.report();
    let exp = task(&report, "exp");
    // The hook works where it was planted: the variant's own python ran it.
    let cheat_out =
        std::fs::read_to_string(task(&report, "exp@2")["stdout_log"].as_str().unwrap()).unwrap();
    insta::assert_snapshot!(cheat_out, @"999");
    assert_eq!(task(&report, "exp@2")["score"]["value"], 1.0, "{report}");
    assert_eq!(task(&report, "exp@1")["score"]["value"], 10.0, "{report}");
    assert_eq!(exp["experiment"]["winner"], "exp@1", "{report}");
    assert_eq!(repo.show("swarm/score", "n.txt"), "10");
    // The scorers' homes are gone.
    let tmp = repo.path().join(".swarm/runs/score/tmp");
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".score"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

/// A variant's TMPDIR kept with its warm worktree is the variant's, as its
/// HOME is: its scorer can neither read nor write it (a score that could
/// would read what the variant left there, or change the `$TMPDIR/` test
/// report swarm reads after). Each variant leaves a file there and the
/// path in its worktree; each scorer says 1 if it can read the file, 0 if
/// not.
#[test]
fn a_variants_score_cannot_reach_its_kept_tmpdir() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    repo.write("n.txt", "1\n");
    repo.commit_all("n");
    let p = plan(
        &repo,
        "kept",
        "",
        r#"[[task]]
id = "exp"
variants = 2
run = '''
echo left > "$TMPDIR/left.txt"
echo "$TMPDIR" > where.txt
'''
score = '''if cat "$(cat where.txt)/left.txt" >/dev/null 2>&1; then echo 1; else echo 0; fi'''
pick = "max"
"#,
    );
    repo.run_plan(&p, &[]).assert_code(0);
    let report = repo.report();
    let mut wheres = String::new();
    for v in ["exp@1", "exp@2"] {
        let where_ = repo.show(&format!("refs/swarm/kept/{v}"), "where.txt");
        wheres.push_str(&format!("{v}: {where_}\n"));
        assert_eq!(task(&report, v)["score"]["value"], 0.0, "{report}");
    }
    insta::assert_snapshot!(redact(&wheres, &repo), @"
    exp@1: [WORKTREES]/.warm/.tmp/exp@1
    exp@2: [WORKTREES]/.warm/.tmp/exp@2
    ");
}

/// Whether tasks get cgroups here (the OOM count comes from them).
fn cgroups_available(repo: &TestRepo) -> bool {
    let doctor = repo.swarm(&["doctor"]);
    if doctor.stdout.contains("cgroups           unavailable") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but tasks get no cgroups here:\n{}",
            doctor.stdout
        );
        eprintln!("SKIPPED: no cgroups for tasks here:\n{}", doctor.stdout);
        return false;
    }
    true
}

/// A task whose process the kernel kills for its memory limit, inside a
/// shell that then exits 0, fails "out of memory" every time; so does one
/// whose verify is killed so (said as its verify's kill, not the task's),
/// and a variant whose score is.
///
/// With the fix reverted (the OOM count consulted only when the command
/// failed), the three `oom` tasks and `verify` are merged; with the
/// command's kills not counted apart from its verify's, `verify` reads as
/// the task's own kill.
#[test]
fn a_task_killed_for_memory_never_succeeds_even_if_its_shell_exits_0() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) || !cgroups_available(&repo) {
        return;
    }
    let balloon = r#"(python3 -c "x = bytearray(512 * 1024 * 1024)"); echo "python: $?""#;
    let mut tasks = String::new();
    for n in 1..=3 {
        tasks.push_str(&format!(
            "[[task]]\nid = \"oom{n}\"\ncreates = [\"oom{n}.txt\"]\nmemory = \"64MiB\"\nrun = '''\n{balloon}\necho done > oom{n}.txt\nexit 0\n'''\n\n"
        ));
    }
    tasks.push_str(&format!(
        "[[task]]\nid = \"verify\"\ncreates = [\"v.txt\"]\nmemory = \"64MiB\"\nrun = \"echo v > v.txt\"\nverify = '''\n{balloon}\nexit 0\n'''\n\n"
    ));
    tasks.push_str(&format!(
        "[[task]]\nid = \"scored\"\ncreates = [\"s.txt\"]\nmemory = \"64MiB\"\nvariants = 2\nrun = \"echo {{variant}} > s.txt\"\nscore = '''\n{balloon}\necho 5\n'''\npick = \"max\"\n\n"
    ));
    tasks.push_str(
        "[[task]]\nid = \"fine\"\ncreates = [\"fine.txt\"]\nmemory = \"64MiB\"\nrun = \"echo ok > fine.txt\"\n",
    );
    let p = plan(&repo, "oom", "on_failure = \"continue\"", &tasks);
    repo.run_plan(&p, &[]).assert_code(1);
    let report = repo.report();
    let mut reasons = String::new();
    for id in ["oom1", "oom2", "oom3", "verify"] {
        let t: &Value = task(&report, id);
        assert_eq!(t["status"], "failed", "{id}: {report}");
        reasons.push_str(&format!("{id}: {}\n", t["reason"].as_str().unwrap()));
    }
    // Not through the snapshot filters: the limit is the point here.
    insta::assert_snapshot!(reasons, @r#"
    oom1: killed: out of memory (the task's limit is 64.0 MiB, `memory` in the plan)
    oom2: killed: out of memory (the task's limit is 64.0 MiB, `memory` in the plan)
    oom3: killed: out of memory (the task's limit is 64.0 MiB, `memory` in the plan)
    verify: verify "(python3 -c "x = bytearray(512 * 1024 * 1024)"); echo "python: $?" ..." killed: out of memory (the task's limit is 64.0 MiB, `memory` in the plan), see .swarm/runs/oom/logs/verify/1.verify.err (and .verify.out)
    "#);
    // The shell did go on (and said python was killed).
    let outs: Vec<String> = (1..=3)
        .map(|n| {
            std::fs::read_to_string(
                task(&report, &format!("oom{n}"))["stdout_log"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap()
        })
        .collect();
    assert!(outs.iter().all(|o| *o == outs[0]), "{outs:?}");
    insta::assert_snapshot!(outs[0], @"python: 137");
    let errors: Vec<String> = ["scored@1", "scored@2"]
        .iter()
        .map(|variant| {
            task(&report, variant)["score"]["error"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(errors[0], errors[1], "{report}");
    insta::assert_snapshot!(errors[0], @"score was killed: out of memory (the task's limit is 64.0 MiB, `memory` in the plan)");
    assert_eq!(task(&report, "scored")["status"], "failed", "{report}");
    assert_eq!(task(&report, "fine")["status"], "merged", "{report}");
    let merged = repo.git(&["ls-tree", "-r", "--name-only", "swarm/oom"]);
    insta::assert_snapshot!(merged, @"
    README.md
    docs/guide.txt
    fine.txt
    src/lib.txt
    ");
    assert!(
        !merged.contains("oom") && !merged.contains("v.txt"),
        "{merged}"
    );
}
