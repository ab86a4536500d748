//! `swarm clean`: frees worktrees and scratch space, never work.

use std::path::Path;

use crate::support::{Run, TestRepo, redact, snapshot_settings, task, wait_until};

#[test]
fn clean_frees_worktrees_but_commits_work_that_is_on_no_ref_first() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "c.toml",
        "[defaults]\nwarm = false\n\n[swarm]\non_failure = \"continue\"\n\n[[task]]\nid = \"good\"\nrun = \"echo good > good.txt\"\n\n[[task]]\nid = \"bad\"\nrun = \"echo half > half.txt; exit 3\"\n",
    );
    repo.run_plan(&plan, &[]).assert_code(1);
    // The failed task's worktree stays for inspection; someone edits it
    // after the run, so part of its content is on no ref.
    let worktree = repo.worktree("c", "bad");
    assert!(worktree.join("half.txt").exists());
    std::fs::write(worktree.join("fix.txt"), "by hand\n").unwrap();

    let out = repo.swarm(&["clean", "--refs"]);
    out.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("clean_refs_keeps_unsaved_work", redact(&out.stdout, &repo));
    });
    assert!(!worktree.exists());
    assert_eq!(repo.show("refs/swarm/c/bad.1", "fix.txt"), "by hand");
    assert_eq!(repo.show("refs/swarm/c/bad.1", "half.txt"), "half");
    // The failed task's own ref stays (not merged); the merged work is in
    // the integration branch.
    assert_eq!(repo.show("refs/swarm/c/bad", "half.txt"), "half");
    assert_eq!(repo.show("swarm/c", "good.txt"), "good");
    // git forgot the worktree too.
    let list = repo.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(
        list.lines().filter(|l| l.starts_with("worktree ")).count(),
        1,
        "{list}"
    );
    // A second clean has nothing left to do and keeps nothing twice.
    let again = repo.swarm(&["clean"]);
    again.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("clean_again", redact(&again.stdout, &repo));
    });
}

#[test]
fn clean_leaves_a_running_run_alone() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "busy.toml",
        "[[task]]\nid = \"slow\"\nrun = \"echo x > x.txt; sleep 20\"\n",
    );
    let mut child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = repo.worktree("busy", "slow").join("x.txt");
    wait_until("the task to start", || started.exists());
    let out = repo.swarm(&["clean", "busy"]);
    let _ = child.kill();
    let _ = child.wait();
    out.assert_code(1);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("clean_refuses_a_running_run", redact(&out.stderr, &repo));
    });
    assert!(started.exists(), "clean removed a running task's worktree");
}

#[test]
fn clean_names_an_unknown_run() {
    let repo = TestRepo::new();
    let plan = repo.plan("one.toml", "[[task]]\nid = \"a\"\nrun = \"true\"\n");
    repo.run_plan(&plan, &[]).assert_code(0);
    let out = repo.swarm(&["clean", "nope"]);
    out.assert_code(2);
    insta::assert_snapshot!("clean_unknown_run", redact(&out.stderr, &repo));
}

#[test]
fn clean_goes_past_a_worktree_it_cannot_commit_and_says_why() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "c.toml",
        "[defaults]\nwarm = false\n\n[swarm]\non_failure = \"continue\"\n\n[[task]]\nid = \"bad\"\nrun = \"echo half > half.txt; exit 3\"\n\n[[task]]\nid = \"other\"\nrun = \"echo other > other.txt; exit 3\"\n",
    );
    repo.run_plan(&plan, &[]).assert_code(1);
    let bad = repo.worktree("c", "bad");
    let other = repo.worktree("c", "other");
    std::fs::write(bad.join("unsaved.txt"), "by hand\n").unwrap();
    std::fs::write(other.join("unsaved.txt"), "by hand\n").unwrap();
    // Lose `bad`'s git records (its admin directory under .git/worktrees):
    // its work cannot be committed, so it must not be deleted either.
    let admin = std::fs::read_to_string(bad.join(".git")).unwrap();
    let admin = Path::new(admin.trim().strip_prefix("gitdir: ").unwrap()).to_path_buf();
    assert!(admin.starts_with(repo.path().join(".git/worktrees")));
    std::fs::remove_dir_all(&admin).unwrap();
    let tmp = repo.path().join(".swarm/runs/c/tmp");
    assert!(tmp.exists());

    let out = repo.swarm(&["clean"]);
    out.assert_code(1);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("clean_cannot_commit_stderr", redact(&out.stderr, &repo));
        insta::assert_snapshot!("clean_cannot_commit_stdout", redact(&out.stdout, &repo));
    });
    assert!(bad.join("unsaved.txt").exists(), "unsaved work was deleted");
    assert!(!other.exists());
    assert!(!tmp.exists());
    assert_eq!(repo.show("refs/swarm/c/other.1", "unsaved.txt"), "by hand");
}

/// The run's refs (`refs/swarm/<run>/...`), sorted.
fn run_refs(repo: &TestRepo, run: &str) -> Vec<String> {
    let mut refs: Vec<String> = repo
        .git(&[
            "for-each-ref",
            "--format=%(refname)",
            &format!("refs/swarm/{run}/"),
        ])
        .lines()
        .map(str::to_string)
        .collect();
    refs.sort();
    refs
}

/// Runs `swarm clean RUN --refs` and checks that it kept exactly the refs
/// whose commits git does not find on `swarm/<run>`, saying so for each,
/// and deleted the others. Returns the output and the refs kept.
#[track_caller]
fn clean_refs_keeps_what_is_not_on_the_branch(repo: &TestRepo, run: &str) -> (Run, Vec<String>) {
    let branch = format!("swarm/{run}");
    let before = run_refs(repo, run);
    assert!(!before.is_empty());
    let (off, on): (Vec<String>, Vec<String>) = before.into_iter().partition(|r| {
        let out = repo.git_output(&["merge-base", "--is-ancestor", r, &branch]);
        match out.status.code() {
            Some(0) => false,
            Some(1) => true,
            _ => panic!("git merge-base failed: {out:?}"),
        }
    });
    let out = repo.swarm(&["clean", run, "--refs"]);
    out.assert_code(0);
    assert_eq!(run_refs(repo, run), off, "{}", out.stdout);
    for r in &off {
        assert!(
            out.stdout
                .contains(&format!("kept {r}: its work is not on {branch}")),
            "{r}: {}",
            out.stdout
        );
    }
    for r in &on {
        assert!(
            out.stdout
                .contains(&format!("deleted {r}: its work is on {branch}")),
            "{r}: {}",
            out.stdout
        );
    }
    (out, off)
}

const MIX: &str = r#"[swarm]
name = "mix"
on_failure = "continue"
concurrency = 4

[[task]]
id = "merged"
run = "echo m > m.txt"

[[task]]
id = "ro"
isolation = "readonly"
run = "test -f README.md"

[[task]]
id = "fail"
run = "echo f > f.txt; exit 3"

[[task]]
id = "after"
deps = ["fail"]
run = "echo a > a.txt"

[[task]]
id = "slow"
timeout = "1s"
run = "echo s > s.txt; sleep 20"

[[task]]
id = "one"
run = "echo one > same.txt"

[[task]]
id = "two"
run = "echo two > same.txt"
on_conflict = "stop"

[[task]]
id = "exp"
creates = ["n.txt"]
variants = { n = [5, 3] }
run = "echo {n} > n.txt"
score = "cat n.txt"
pick = "min"

[[task]]
id = "race"
creates = ["r.txt"]
variants = 3
pick = "first"
run = "if [ {variant} = 2 ]; then echo two > r.txt; else echo slow > r.txt; sleep 30; fi"

[[task]]
id = "p"
creates = ["d"]
run = '''
mkdir -p d
cat > "$SWARM_SUBTASKS" <<'REQUEST'
[[task]]
id = "ok"
creates = ["d/ok.txt"]
run = "echo ok > d/ok.txt"

[[task]]
id = "bad"
creates = ["d/bad.txt"]
run = "echo partial > d/bad.txt; exit 3"
REQUEST
'''
"#;

#[test]
fn clean_refs_keeps_every_ref_whose_work_is_not_on_the_branch_whatever_the_status() {
    let repo = TestRepo::new();
    let plan = repo.plan("mix.toml", MIX);
    repo.run_plan(&plan, &[]).assert_code(1);
    let report = repo.report();
    let status = |id: &str| task(&report, id)["status"].as_str().unwrap().to_string();
    let mut seen: Vec<String> = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    seen.dedup();
    for want in [
        "merged",
        "succeeded",
        "failed",
        "timed_out",
        "blocked",
        "conflicted",
        "cancelled",
    ] {
        assert!(seen.iter().any(|s| s == want), "no {want} in {report}");
    }
    assert_eq!(status("ro"), "succeeded", "{report}");
    assert_eq!(status("after"), "blocked", "{report}");
    assert_eq!(status("slow"), "timed_out", "{report}");
    assert_eq!(status("p/bad"), "failed", "{report}");

    let (out, kept) = clean_refs_keeps_what_is_not_on_the_branch(&repo, "mix");
    // What only a ref holds is still there.
    for r in [
        "refs/swarm/mix/fail",
        "refs/swarm/mix/slow",
        "refs/swarm/mix/p+bad",
        "refs/swarm/mix/exp@1",
    ] {
        assert!(kept.iter().any(|k| k == r), "{r} deleted: {}", out.stdout);
    }
    // Whether the race's slow variants started before its quick one won
    // (and so have refs, worktrees and tmp directories) is the
    // scheduler's timing: their lines are left out (kept, or deleted when
    // one was stopped before it changed anything, its ref then at the
    // base), and how many worktrees and tmp directories went.
    let shown: String = out
        .stdout
        .lines()
        .filter(|l| {
            !l.contains(" refs/swarm/mix/race@1:") && !l.contains(" refs/swarm/mix/race@3:")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let mut settings = snapshot_settings();
    settings.add_filter(
        r"removed \d+ worktrees? (\(\[SIZE\]\)) and \d+ tmp director(y|ies)",
        "removed [N] worktrees $1 and [N] tmp directories",
    );
    settings.bind(|| insta::assert_snapshot!(redact(&shown, &repo), @"
    run mix: removed [N] worktrees ([SIZE]) and [N] tmp directories ([SIZE])
      deleted refs/swarm/mix/exp@2: its work is on swarm/mix
      deleted refs/swarm/mix/merged: its work is on swarm/mix
      deleted refs/swarm/mix/one: its work is on swarm/mix
      deleted refs/swarm/mix/p: its work is on swarm/mix
      deleted refs/swarm/mix/race@2: its work is on swarm/mix
      kept refs/swarm/mix/exp@1: its work is not on swarm/mix (succeeded)
      kept refs/swarm/mix/fail: its work is not on swarm/mix (failed)
      kept refs/swarm/mix/p+bad: its work is not on swarm/mix (subtask, failed)
      kept refs/swarm/mix/p+ok: its work is not on swarm/mix (subtask, succeeded)
      kept refs/swarm/mix/slow: its work is not on swarm/mix (timed_out)
      kept refs/swarm/mix/two: its work is not on swarm/mix (conflicted)
      kept branch swarm/mix: its tip [HASH] is on no other branch (merge it first, or pass --force to delete it anyway)
    freed [SIZE]
    "));
    assert!(!kept.iter().any(|k| k == "refs/swarm/mix/merged"));
}

#[test]
fn clean_refs_after_a_run_wide_verify_keeps_the_culprits_and_its_dependents_work() {
    let repo = TestRepo::new();
    let mut tasks: String = (1..=4)
        .map(|i| {
            let word = if i == 3 { "BAD" } else { "ok" };
            format!(
                "[[task]]\nid = \"t{i}\"\ncreates = [\"t{i}.txt\"]\nrun = \"echo {word} > t{i}.txt\"\n\n"
            )
        })
        .collect();
    tasks.push_str(
        "[[task]]\nid = \"after3\"\ndeps = [\"t3\"]\ncreates = [\"after3.txt\"]\nrun = \"echo ok > after3.txt\"\n",
    );
    let plan = repo.plan_exact(
        "v.toml",
        &format!(
            "[swarm]\nname = \"v\"\non_failure = \"continue\"\nverify = \"if grep -l BAD *.txt; then exit 1; fi\"\n\n[defaults]\ntimeout = \"60s\"\n\n{tasks}"
        ),
    );
    repo.run_plan(&plan, &[]).assert_code(1);
    let report = repo.report();
    assert_eq!(task(&report, "t3")["status"], "broke_verify", "{report}");
    assert_eq!(task(&report, "after3")["status"], "blocked", "{report}");

    let (out, kept) = clean_refs_keeps_what_is_not_on_the_branch(&repo, "v");
    assert_eq!(
        kept,
        ["refs/swarm/v/after3", "refs/swarm/v/t3"],
        "{}",
        out.stdout
    );
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&out.stdout, &repo), @"
    run v: removed 0 worktrees ([SIZE]) and 1 tmp directory ([SIZE])
      deleted refs/swarm/v/t1: its work is on swarm/v
      deleted refs/swarm/v/t2: its work is on swarm/v
      deleted refs/swarm/v/t4: its work is on swarm/v
      kept refs/swarm/v/after3: its work is not on swarm/v (blocked)
      kept refs/swarm/v/t3: its work is not on swarm/v (broke-verify)
      kept branch swarm/v: its tip [HASH] is on no other branch (merge it first, or pass --force to delete it anyway)
    kept [SIZE] of build caches (swarm clean --caches frees them):
      [WORKTREES]/.cache/@verify ([SIZE])
      [WORKTREES]/.cache/@verify-base ([SIZE])
    freed [SIZE]
    "));
    assert_eq!(repo.show("refs/swarm/v/t3", "t3.txt"), "BAD");
    assert_eq!(repo.show("refs/swarm/v/after3", "after3.txt"), "ok");
}

#[test]
fn clean_lists_the_build_caches_it_keeps_and_frees_them_with_caches() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "one.toml",
        "[[task]]\nid = \"a\"\nrun = \"echo a > a.txt\"\n",
    );
    // Only git in PATH: no toolchain of this machine's gets a cache.
    let mut cmd = repo.swarm_cmd(&["run", plan.to_str().unwrap()]);
    crate::sandbox::only_git_in_path(&repo, &mut cmd);
    Run::from(cmd.output().unwrap()).assert_code(0);
    // What a cargo build leaves in the repository's shared cache.
    let cache = repo.worktree_home().join(".cache/cargo");
    std::fs::create_dir_all(cache.join("a/debug")).unwrap();
    std::fs::write(cache.join("a/debug/big"), vec![0u8; 1 << 20]).unwrap();

    let out = repo.swarm(&["clean"]);
    out.assert_code(0);
    // The cache's size is its file's, the same everywhere; only the
    // worktrees' sizes depend on the file system.
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("clean_lists_caches", redact(&out.stdout, &repo));
    });
    assert!(
        out.stdout
            .contains(&format!("  {} (1.0 MiB)", cache.display())),
        "{}",
        out.stdout
    );
    assert!(cache.join("a/debug/big").exists());

    let out = repo.swarm(&["clean", "--caches"]);
    out.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("clean_caches", redact(&out.stdout, &repo));
    });
    assert!(out.stdout.contains("freed 1.0 MiB"), "{}", out.stdout);
    assert!(!cache.exists());
}

#[test]
fn clean_gone_removes_the_homes_of_deleted_repositories_only() {
    let alive = TestRepo::new();
    let deleted = TestRepo::new();
    let root = alive.outside().join("worktrees");
    let root_arg = root.to_str().unwrap();
    for repo in [&alive, &deleted] {
        let plan = repo.plan(
            "one.toml",
            "[defaults]\nwarm = false\n\n[swarm]\non_failure = \"continue\"\n\n[[task]]\nid = \"a\"\nrun = \"echo a > a.txt; exit 3\"\n",
        );
        repo.run_plan(&plan, &["--worktrees", root_arg])
            .assert_code(1);
    }
    let homes = |root: &Path| -> Vec<std::path::PathBuf> {
        let mut homes: Vec<_> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        homes.sort();
        homes
    };
    let owner = |home: &Path| {
        std::fs::read_to_string(home.join(".repository"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(homes(&root).len(), 2);
    let deleted_git = deleted.path().join(".git").canonicalize().unwrap();
    let (gone, kept): (Vec<_>, Vec<_>) = homes(&root)
        .into_iter()
        .partition(|h| owner(h) == deleted_git.to_str().unwrap());
    let (gone, kept) = (&gone[0], &kept[0]);
    // A link in the root to a directory that looks like a gone home: left
    // alone, and what it points to untouched.
    let decoy = alive.outside().join("decoy");
    std::fs::create_dir_all(&decoy).unwrap();
    std::fs::write(decoy.join(".repository"), "/nonexistent/.git\n").unwrap();
    std::os::unix::fs::symlink(&decoy, root.join("decoy")).unwrap();
    std::fs::remove_dir_all(deleted.path()).unwrap();

    let out = alive.swarm(&["clean", "--gone", "--worktrees", root_arg]);
    out.assert_code(0);
    let shown = out
        .stdout
        .replace(&gone.display().to_string(), "[GONE HOME]")
        .replace(&deleted.root().display().to_string(), "[DELETED]");
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("clean_gone", redact(&shown, &alive));
    });
    assert!(!out.stdout.contains("freed 0 B"), "{}", out.stdout);
    assert!(!gone.exists());
    assert!(kept.join("one/a").exists());
    assert!(decoy.join(".repository").exists());
    // Nothing more to do the second time.
    let again = alive.swarm(&["clean", "--gone", "--worktrees", root_arg]);
    again.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("clean_gone_again", redact(&again.stdout, &alive));
    });
}

/// `swarm clean --older-than AGE` frees the runs that started before then,
/// as their journals say, and leaves the others (issue 63).
#[test]
fn clean_older_than_frees_only_old_runs() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "o.toml",
        "[defaults]\nwarm = false\n\n[[task]]\nid = \"bad\"\nrun = \"echo half > half.txt; exit 3\"\n",
    );
    for run in ["old", "new"] {
        repo.run_plan(&plan, &["--name", run]).assert_code(1);
        assert!(repo.worktree(run, "bad").exists());
    }
    // Run `old` started ten days ago, by its journal.
    let journal = repo.path().join(".swarm/runs/old/events.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let first = text.lines().next().unwrap().to_string();
    let event: serde_json::Value = serde_json::from_str(&first).unwrap();
    let ts = event["ts"].as_str().unwrap().to_string();
    let old = humantime::format_rfc3339_millis(
        humantime::parse_rfc3339_weak(&ts).unwrap() - std::time::Duration::from_secs(10 * 86_400),
    )
    .to_string();
    std::fs::write(&journal, text.replacen(&ts, &old, 1)).unwrap();
    let out = repo.swarm(&["clean", "--older-than", "7d"]);
    out.assert_code(0);
    assert!(
        !repo.worktree_home().join("old").join("bad").exists(),
        "{}",
        out.stdout
    );
    assert!(repo.worktree("new", "bad").exists(), "{}", out.stdout);
    // A bad age is said plainly.
    let bad = repo.swarm(&["clean", "--older-than", "a week"]);
    bad.assert_code(2);
    insta::assert_snapshot!("clean_bad_age", redact(&bad.stderr, &repo));
}
