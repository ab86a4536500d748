//! Path ownership (issue 17): a task with `paths` or `creates` writes only
//! there. The sandbox refuses its writes elsewhere as they happen; the
//! result check fails an attempt whose snapshot changed anything else
//! (unsandboxed runs, WASM), keeping its work on its ref, unmerged.

use crate::sandbox::sandbox_available;
use crate::support::{TestRepo, redact, snapshot_settings, summary_of, task};

/// A repository with `src/a/` (owned by the tasks below) and `src/b/`
/// beside the test repository's usual files.
fn repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("src/a/a.txt", "a\n");
    repo.write("src/b/b.txt", "b\n");
    repo.commit_all("two packages");
    repo
}

/// Whether `rev` (`<commit>:<path>`) names an object.
fn exists(repo: &TestRepo, rev: &str) -> bool {
    repo.git_output(&["cat-file", "-e", rev]).status.success()
}

/// Shell prelude: `try NAME CMD...` records in `src/a/result.txt` (inside
/// the task's paths) whether CMD succeeded, with its error.
const PRELUDE: &str = r#"R="$PWD/src/a/result.txt"
try() { n=$1; shift; if err=$("$@" 2>&1 >/dev/null); then echo "ALLOWED $n" >> "$R"; else echo "denied $n: $err" >> "$R"; fi; }
"#;

/// Runs `tasks` (extra TOML keys with `run`) in the plan `name`; returns
/// the run's outcome.
fn run(repo: &TestRepo, name: &str, swarm: &str, tasks: &str) -> crate::support::Run {
    let plan = repo.plan(
        &format!("{name}.toml"),
        &format!(
            "[swarm]\nname = \"{name}\"\non_failure = \"continue\"\n{swarm}\n\n[defaults]\ntimeout = \"30s\"\n\n{tasks}"
        ),
    );
    repo.run_plan(&plan, &[])
}

/// Two tasks that try to write outside their paths: `intruder` owns the
/// directory `src/a`, `file` only the file `src/b/b.txt`. Each records
/// what it tried in a file it owns.
fn intruders() -> String {
    format!(
        "[[task]]\nid = \"intruder\"\npaths = [\"src/a\"]\nrun = '''\n{PRELUDE}\
         try readme sh -c 'echo x > README.md'\n\
         try mkdir mkdir src/z\n\
         try other-package sh -c 'mkdir -p src/b && echo y > src/b/f'\n\
         try rename mv src/a src/c\n\
         try own sh -c 'echo mine > src/a/a.txt && mkdir -p src/a/sub && echo new > src/a/sub/n.txt'\n'''\n\n\
         {}",
        in_place()
    )
}

/// A task that owns only the file `src/b/b.txt` and edits it as people
/// do: `sed -i`, `perl -pi` and `patch` each write a temporary file beside
/// it and rename it over the original.
fn in_place() -> &'static str {
    "[[task]]\nid = \"file\"\npaths = [\"src/b/b.txt\"]\nrun = '''\nset -e\n\
     sed -i 's/^b$/b by sed/' src/b/b.txt\n\
     perl -pi -e 's/by sed/by sed and perl/' src/b/b.txt\n\
     printf -- '--- a/src/b/b.txt\\n+++ b/src/b/b.txt\\n@@ -1 +1,2 @@\\n b by sed and perl\\n+patched\\n' > \"$TMPDIR/p.diff\"\n\
     patch -p1 < \"$TMPDIR/p.diff\"\n'''\n"
}

/// What a run says before its header (warnings) and its final summary:
/// the live lines between come in the order tasks happen to end.
fn head_and_summary(stderr: &str) -> String {
    let head: String = stderr
        .lines()
        .take_while(|l| !l.starts_with("swarm: run "))
        .map(|l| format!("{l}\n"))
        .collect();
    format!("{head}[…]\n{}", summary_of(stderr))
}

/// Whether a command's error is the file system's refusal: a read-only
/// mount (the namespace layer) or Landlock's EACCES.
fn refusal(error: &str) -> bool {
    error.contains("Read-only file system") || error.contains("Permission denied")
}

/// Checks what `intruders` recorded in run `name`: every write outside the
/// task's paths refused (the command saw an error), its own ones done and
/// merged.
#[track_caller]
fn assert_refused(repo: &TestRepo, name: &str) {
    let report = repo.report();
    for id in ["intruder", "file"] {
        assert_eq!(task(&report, id)["status"], "merged", "{report}");
    }
    let results = repo.show(&format!("refs/swarm/{name}/intruder"), "src/a/result.txt");
    let lines: Vec<&str> = results.lines().collect();
    assert_eq!(lines.len(), 5, "{results}");
    for (line, try_name) in lines
        .iter()
        .zip(["readme", "mkdir", "other-package", "rename"])
    {
        let error = line.strip_prefix(&format!("denied {try_name}: "));
        assert!(error.is_some_and(refusal), "{results}");
    }
    assert_eq!(lines[4], "ALLOWED own", "{results}");
    let branch = format!("swarm/{name}");
    assert_eq!(repo.show(&branch, "src/a/sub/n.txt"), "new");
    assert_eq!(repo.show(&branch, "src/a/a.txt"), "mine");
    assert_eq!(repo.show(&branch, "README.md"), "# test repo");
    assert!(!exists(repo, &format!("{branch}:src/b/f")));
    assert!(!exists(repo, &format!("{branch}:src/c/a.txt")));

    // A file of its own is edited by sed -i, perl -pi and patch, which
    // write beside it and rename; nothing else of src/b changed.
    assert_eq!(
        repo.show(&branch, "src/b/b.txt"),
        "b by sed and perl\npatched"
    );
    assert_eq!(
        task(&report, "file")["changed_files"],
        serde_json::json!(["src/b/b.txt"])
    );
    let listed = repo.git_output(&["ls-tree", "-r", "--name-only", &branch, "src/b"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "src/b/b.txt\n");
}

#[test]
fn the_sandbox_refuses_writes_outside_a_tasks_paths() {
    let repo = repo();
    if !sandbox_available(&repo) {
        return;
    }
    let tasks = format!(
        "{}\n[[task]]\nid = \"maker\"\npaths = [\"docs\"]\ncreates = [\"src/made.rs\"]\n\
         run = \"echo made > src/made.rs && echo maker >> docs/guide.txt\"\n",
        intruders()
    );
    run(&repo, "guarded", "", &tasks).assert_code(0);
    assert_refused(&repo, "guarded");
    // A task that writes only inside its paths and what it creates
    // succeeds, and the created file is merged.
    let report = repo.report();
    assert_eq!(task(&report, "maker")["status"], "merged", "{report}");
    assert_eq!(repo.show("swarm/guarded", "src/made.rs"), "made");
    assert_eq!(
        task(&report, "maker")["changed_files"],
        serde_json::json!(["docs/guide.txt", "src/made.rs"])
    );
}

/// A task that owns one file may write beside it (that is how in-place
/// editors work) but the result check keeps it to the file: a sibling it
/// wrote instead fails the attempt, naming it, and the work stays on its
/// ref. A writing task that changed nothing succeeds with a warning.
#[test]
fn a_task_owning_a_file_cannot_keep_a_sibling_and_one_that_changed_nothing_is_warned() {
    let repo = repo();
    if !sandbox_available(&repo) {
        return;
    }
    let junit = repo.root().join("junit.xml");
    let plan = repo.plan(
        "beside.toml",
        "[swarm]\nname = \"beside\"\non_failure = \"continue\"\n\n\
         [[task]]\nid = \"sibling\"\npaths = [\"src/b/b.txt\"]\n\
         run = \"sed -i s/b/c/ src/b/b.txt && echo x > src/b/other\"\n\n\
         [[task]]\nid = \"noop\"\npaths = [\"src/a/a.txt\"]\n\
         run = \"perl -pi -e 's/nothing here/x/' src/a/a.txt\"\n",
    );
    let out = repo.run_plan(&plan, &["--junit", junit.to_str().unwrap()]);
    out.assert_code(1);
    let report = repo.report();
    let sibling = task(&report, "sibling");
    assert_eq!(sibling["status"], "failed", "{report}");
    assert!(
        sibling["reason"]
            .as_str()
            .unwrap()
            .starts_with("wrote outside its paths: src/b/other (its paths: src/b/b.txt)"),
        "{sibling}"
    );
    assert_eq!(repo.show("refs/swarm/beside/sibling", "src/b/other"), "x");
    assert_eq!(repo.show("refs/swarm/beside/sibling", "src/b/b.txt"), "c");
    let noop = task(&report, "noop");
    assert_eq!(noop["status"], "merged", "{report}");
    let warning = "changed nothing";
    assert!(
        noop["warnings"][0].as_str().unwrap().starts_with(warning),
        "{noop}"
    );
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&out.stderr), &repo), @r#"
        run beside: finished with failures (exit 1)
          task     status          time  try  changed  result
          sibling  failed         [T]s    1        2  refs/swarm/beside/sibling
          noop     merged         [T]s    1        0  refs/swarm/beside/noop

          1 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/beside at [HASH], [T]s
          warning: `noop` changed nothing: it succeeded without changing a file (if it only checks, `isolation = "readonly"` says so)
          sibling: wrote outside its paths: src/b/other (its paths: src/b/b.txt); its work is on refs/swarm/beside/sibling: add it to `paths` or `creates`, or leave it to another task
          sibling log: .swarm/runs/beside/logs/sibling/1.err
        "#));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(warning), "{xml}");
}

// The filter `swarm_denied` installs names `unshare` by its x86_64 number.
#[cfg(target_arch = "x86_64")]
#[test]
fn without_namespaces_landlock_alone_keeps_tasks_in_their_paths() {
    let repo = repo();
    if !sandbox_available(&repo) {
        return;
    }
    // Workers of a root swarm (uid 65534) reach their worktree through the
    // host's directories without a mount namespace.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(repo.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let plan = repo.plan(
        "landlock.toml",
        &format!(
            "[swarm]\nname = \"landlock\"\non_failure = \"continue\"\n\n{}",
            intruders()
        ),
    );
    // unshare (272 on x86_64) refused: no user namespace for the launcher.
    let out = crate::sandbox::swarm_denied(&repo, 272, 273, 1, &["run", plan.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(&head_and_summary(&out.stderr), &repo), @"
        warning: user namespaces are unavailable (Operation not permitted (os error 1)): tasks run under Landlock + seccomp only, so chmod, utime and xattr changes outside the worktree are not blocked (see `swarm doctor`)
        […]
        run landlock: succeeded
          task      status          time  try  changed  result
          intruder  merged         [T]s    1        3  refs/swarm/landlock/intruder
          file      merged         [T]s    1        1  refs/swarm/landlock/file

          2 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/landlock at [HASH], [T]s
        "));
    assert_refused(&repo, "landlock");
}

#[test]
fn a_creates_directory_takes_files_below_it_and_the_rest_stays_read_only() {
    let repo = repo();
    if !sandbox_available(&repo) {
        return;
    }
    // No `paths`: the whole repository is checked out, but only
    // `src/new/` (two levels below a missing directory in the second
    // task) is the task's to write.
    let tasks = format!(
        "[[task]]\nid = \"new-dir\"\ncreates = [\"src/new/\"]\nrun = '''\n{PRELUDE}\
         R=\"$PWD/src/new/result.txt\"\nmkdir -p src/new/deep\n\
         echo x > src/new/deep/x.rs\necho y > src/new/y.rs\n\
         try readme sh -c 'echo x > README.md'\n\
         try docs sh -c 'echo x >> docs/guide.txt'\n'''\n\n\
         [[task]]\nid = \"gen\"\ncreates = [\"gen/out/\"]\n\
         run = \"mkdir -p gen/out/x && echo g > gen/out/x/g.txt && cat src/lib.txt > gen/out/lib.txt\"\n"
    );
    let out = run(&repo, "created", "", &tasks);
    out.assert_code(0);
    let report = repo.report();
    assert_eq!(task(&report, "new-dir")["status"], "merged", "{report}");
    assert_eq!(task(&report, "gen")["status"], "merged", "{report}");
    assert_eq!(repo.show("swarm/created", "src/new/deep/x.rs"), "x");
    assert_eq!(repo.show("swarm/created", "src/new/y.rs"), "y");
    let results = repo.show("swarm/created", "src/new/result.txt");
    let lines: Vec<&str> = results.lines().collect();
    assert_eq!(lines.len(), 2, "{results}");
    for (line, try_name) in lines.iter().zip(["readme", "docs"]) {
        let error = line.strip_prefix(&format!("denied {try_name}: "));
        assert!(error.is_some_and(refusal), "{results}");
    }
    assert_eq!(repo.show("swarm/created", "docs/guide.txt"), "guide");
    assert_eq!(repo.show("swarm/created", "gen/out/x/g.txt"), "g");
    assert_eq!(repo.show("swarm/created", "gen/out/lib.txt"), "fn main");
}

#[test]
fn a_task_without_paths_still_writes_anywhere() {
    let repo = repo();
    for (name, swarm) in [("free-none", "sandbox = \"none\""), ("free", "")] {
        if swarm.is_empty() && !sandbox_available(&repo) {
            continue;
        }
        let out = run(
            &repo,
            name,
            swarm,
            "[[task]]\nid = \"free\"\nrun = \"echo x >> README.md && mkdir -p new/dir && echo y > new/dir/f && rm docs/guide.txt\"\n",
        );
        out.assert_code(0);
        let branch = format!("swarm/{name}");
        assert_eq!(repo.show(&branch, "README.md"), "# test repo\nx");
        assert_eq!(repo.show(&branch, "new/dir/f"), "y");
        assert!(!exists(&repo, &format!("{branch}:docs/guide.txt")));
    }
}

#[test]
fn an_unsandboxed_task_writing_outside_its_paths_fails_and_keeps_its_work() {
    let repo = repo();
    let junit = repo.root().join("junit.xml");
    let plan = repo.plan(
        "sprawl.toml",
        "[swarm]\nname = \"sprawl\"\nsandbox = \"none\"\non_failure = \"continue\"\n\n\
         [[task]]\nid = \"sprawl\"\npaths = [\"src/a\"]\ncreates = [\"src/a.md\"]\nretries = 1\n\
         run = \"echo mine > src/a/a.txt && echo doc > src/a.md && echo x > README.md && mkdir -p src/b && echo y > src/b/f\"\n\n\
         [[task]]\nid = \"tidy\"\npaths = [\"src/b\"]\nrun = \"echo tidy > src/b/tidy.txt\"\n",
    );
    let out = repo.run_plan(&plan, &["--junit", junit.to_str().unwrap()]);
    out.assert_code(1);

    let expected =
        "wrote outside its paths: README.md, src/b/f (its paths: src/a; creates: src/a.md)";
    let report = repo.report();
    let t = task(&report, "sprawl");
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["attempts"], 2, "the failed attempt is retried: {t}");
    let reason = t["reason"].as_str().unwrap();
    assert!(reason.starts_with(expected), "{reason}");
    assert!(
        reason.ends_with(
            "; its work is on refs/swarm/sprawl/sprawl: add them to `paths` or `creates`, or leave them to another task"
        ),
        "{reason}"
    );
    assert_eq!(
        t["outside_paths"],
        serde_json::json!(["README.md", "src/b/f"])
    );
    // The user sees why: in the run's summary, `swarm status` and JUnit.
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&out.stderr), &repo), @"
        run sprawl: finished with failures (exit 1)
          task    status          time  try  changed  result
          sprawl  failed         [T]s    2        4  refs/swarm/sprawl/sprawl
          tidy    merged         [T]s    1        1  refs/swarm/sprawl/tidy

          1 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/sprawl at [HASH], [T]s
          sprawl: wrote outside its paths: README.md, src/b/f (its paths: src/a; creates: src/a.md); its work is on refs/swarm/sprawl/sprawl: add them to `paths` or `creates`, or leave them to another task
          sprawl log: .swarm/runs/sprawl/logs/sprawl/2.err
        "));
    let status = repo.swarm(&["status"]);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&status.stdout, &repo), @"

    run sprawl: finished with failures (exit 1)
      task    status          time  try  changed  result
      sprawl  failed         [T]s    2        4  refs/swarm/sprawl/sprawl
      tidy    merged         [T]s    1        1  refs/swarm/sprawl/tidy

      1 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/sprawl at [HASH], [T]s
      sprawl: wrote outside its paths: README.md, src/b/f (its paths: src/a; creates: src/a.md); its work is on refs/swarm/sprawl/sprawl: add them to `paths` or `creates`, or leave them to another task
      sprawl log: .swarm/runs/sprawl/logs/sprawl/2.err
    "));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(expected), "{xml}");

    // The journal says which attempt failed for it, though it exited 0.
    let journal =
        std::fs::read_to_string(repo.path().join(".swarm/runs/sprawl/events.jsonl")).unwrap();
    let attempts: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "attempt_finished" && e["task"] == "sprawl")
        .collect();
    assert_eq!(attempts.len(), 2);
    for a in &attempts {
        assert_eq!(a["code"], 0, "{a}");
        assert_eq!(
            a["outside_paths"],
            serde_json::json!(["README.md", "src/b/f"])
        );
    }
    assert_eq!(attempts[0]["ref"], "refs/swarm/sprawl/sprawl.1");

    // Nothing is lost: both attempts' work is on their refs...
    for r in ["refs/swarm/sprawl/sprawl.1", "refs/swarm/sprawl/sprawl"] {
        assert_eq!(repo.show(r, "README.md"), "x");
        assert_eq!(repo.show(r, "src/b/f"), "y");
        assert_eq!(repo.show(r, "src/a.md"), "doc");
        assert_eq!(repo.show(r, "src/a/a.txt"), "mine");
        // ...with what was never checked out kept.
        assert_eq!(repo.show(r, "docs/guide.txt"), "guide");
        let subject = repo.git(&["log", "-1", "--format=%s", r]);
        assert!(
            subject.starts_with(&format!("swarm: sprawl/sprawl: {expected}")),
            "{subject}"
        );
    }
    // ...and none of it reaches the integration branch.
    assert_eq!(task(&report, "tidy")["status"], "merged");
    assert_eq!(repo.show("swarm/sprawl", "src/b/tidy.txt"), "tidy");
    assert_eq!(repo.show("swarm/sprawl", "README.md"), "# test repo");
    assert_eq!(repo.show("swarm/sprawl", "src/a/a.txt"), "a");
    assert!(!exists(&repo, "swarm/sprawl:src/b/f"));
    assert!(!exists(&repo, "swarm/sprawl:src/a.md"));
}
