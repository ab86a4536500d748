//! swarm's own state (`.swarm/`) against hostile input (issue 14): run
//! names that are paths (class 9), a checkout that plants links in
//! `.swarm` (class 10), and a damaged journal line.

use std::path::Path;

use crate::support::{TestRepo, redact, snapshot_settings};

/// Every path under `dir` (not following links), for before/after checks.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        out.push(path.display().to_string());
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            out.extend(tree(&path));
        }
    }
    out.sort();
    out
}

const ONE: &str = "[[task]]\nid = \"a\"\nrun = \"echo a > a.txt\"\n";

#[test]
fn run_names_that_are_paths_or_not_ref_safe_are_refused_before_anything_is_made() {
    let repo = TestRepo::new();
    let plan = repo.plan("one.toml", ONE);
    repo.run_plan(&plan, &[]).assert_code(0);
    let latest = std::fs::read_to_string(repo.path().join(".swarm/runs/latest")).unwrap();
    let before = tree(repo.root());
    let abs = repo.outside().join("abs-run");
    let abs = abs.to_str().unwrap();
    // What each name is refused with, the same for every command.
    let mut said = String::new();
    for name in [
        abs,
        "../../x",
        "x.lock",
        "a..b",
        "My Run",
        "feature/x",
        " x",
        "",
        "latest",
    ] {
        let mut first: Option<String> = None;
        for args in [
            vec!["run", plan.to_str().unwrap(), "--name", name],
            vec!["resume", name],
            vec!["status", name],
            vec!["logs", name, "a"],
            vec!["clean", name],
            vec!["graph", "--run", name],
        ] {
            let out = repo.swarm(&args);
            out.assert_code(2);
            let stderr = redact(&out.stderr, &repo);
            match &first {
                None => first = Some(stderr),
                Some(first) => assert_eq!(&stderr, first, "{args:?}"),
            }
        }
        said.push_str(&first.unwrap_or_default());
    }
    insta::assert_snapshot!(said, @"
    error: failed to use run name `[TMP]/outside/abs-run`: a run name is 1 to 100 of the characters A-Z a-z 0-9 _ - . (so no `/` or spaces), not starting with `.` or `-`, without `..`, not ending in `.lock` or `.`, and not `latest`
    error: failed to use run name `../../x`: a run name is 1 to 100 of the characters A-Z a-z 0-9 _ - . (so no `/` or spaces), not starting with `.` or `-`, without `..`, not ending in `.lock` or `.`, and not `latest`
    error: failed to use run name `x.lock`: a run name is 1 to 100 of the characters A-Z a-z 0-9 _ - . (so no `/` or spaces), not starting with `.` or `-`, without `..`, not ending in `.lock` or `.`, and not `latest`
    error: failed to use run name `a..b`: a run name is 1 to 100 of the characters A-Z a-z 0-9 _ - . (so no `/` or spaces), not starting with `.` or `-`, without `..`, not ending in `.lock` or `.`, and not `latest`
    error: failed to use run name `My Run`: a run name is 1 to 100 of the characters A-Z a-z 0-9 _ - . (so no `/` or spaces), not starting with `.` or `-`, without `..`, not ending in `.lock` or `.`, and not `latest`
    error: failed to use run name `feature/x`: a run name is 1 to 100 of the characters A-Z a-z 0-9 _ - . (so no `/` or spaces), not starting with `.` or `-`, without `..`, not ending in `.lock` or `.`, and not `latest`
    error: failed to use run name ` x`: a run name is 1 to 100 of the characters A-Z a-z 0-9 _ - . (so no `/` or spaces), not starting with `.` or `-`, without `..`, not ending in `.lock` or `.`, and not `latest`
    error: failed to use run name ``: a run name is 1 to 100 of the characters A-Z a-z 0-9 _ - . (so no `/` or spaces), not starting with `.` or `-`, without `..`, not ending in `.lock` or `.`, and not `latest`
    error: failed to use run name `latest`: a run name is 1 to 100 of the characters A-Z a-z 0-9 _ - . (so no `/` or spaces), not starting with `.` or `-`, without `..`, not ending in `.lock` or `.`, and not `latest`
    ");
    assert_eq!(
        tree(repo.root()),
        before,
        "a refused name created something"
    );
    assert_eq!(
        std::fs::read_to_string(repo.path().join(".swarm/runs/latest")).unwrap(),
        latest
    );
}

/// Commits a symlink at `rel` (in the repository) pointing at `target`.
fn commit_link(repo: &TestRepo, rel: &str, target: &Path) {
    let link = repo.path().join(rel);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, &link).unwrap();
    repo.git(&["add", "-f", rel]);
    repo.git(&["commit", "-q", "-m", "hostile"]);
}

/// `outside/` with a file and a directory holding a file, to watch.
fn bait(repo: &TestRepo) -> Vec<String> {
    std::fs::write(repo.outside().join("file"), "precious\n").unwrap();
    std::fs::create_dir_all(repo.outside().join("dir")).unwrap();
    std::fs::write(repo.outside().join("dir/keep"), "keep\n").unwrap();
    tree(&repo.outside())
}

#[track_caller]
fn assert_outside_unchanged(repo: &TestRepo, before: &[String]) {
    assert_eq!(tree(&repo.outside()), before);
    assert_eq!(
        std::fs::read_to_string(repo.outside().join("file")).unwrap(),
        "precious\n"
    );
    assert_eq!(
        std::fs::read_to_string(repo.outside().join("dir/keep")).unwrap(),
        "keep\n"
    );
}

#[test]
fn a_checkout_that_tracks_links_in_the_state_directory_is_refused() {
    // What each link is refused with, the same for every command.
    let mut said = String::new();
    for (rel, target) in [
        (".swarm/runs/latest", "file"),
        (".swarm/worktrees/one", "dir"),
        (".swarm", "dir"),
    ] {
        let repo = TestRepo::new();
        let before = bait(&repo);
        commit_link(&repo, rel, &repo.outside().join(target));
        let plan = repo.plan("one.toml", ONE);
        let mut first: Option<String> = None;
        for args in [
            vec!["run", plan.to_str().unwrap()],
            vec!["resume"],
            vec!["resume", "one"],
            vec!["status"],
            vec!["status", "one"],
            vec!["logs", "one", "a"],
            vec!["clean"],
            vec!["clean", "--all"],
        ] {
            let out = repo.swarm(&args);
            out.assert_code(2);
            let stderr = redact(&out.stderr, &repo);
            match &first {
                None => first = Some(stderr),
                Some(first) => assert_eq!(&stderr, first, "{rel}: {args:?}"),
            }
            assert_outside_unchanged(&repo, &before);
        }
        assert!(!repo.has_rev("swarm/one"), "{rel}: a run started");
        said.push_str(&first.unwrap_or_default());
    }
    insta::assert_snapshot!(said, @"
    error: failed to use swarm's state directory [TMP]/repo/.swarm: git tracks `.swarm/runs/latest` in it, so whoever wrote the commit controls swarm's state
    help: stop tracking it (`git rm -r --cached .swarm` and commit), then remove what the checkout put there; swarm's state is never part of a repository's content
    error: failed to use swarm's state directory [TMP]/repo/.swarm: git tracks `.swarm/worktrees/one` in it, so whoever wrote the commit controls swarm's state
    help: stop tracking it (`git rm -r --cached .swarm` and commit), then remove what the checkout put there; swarm's state is never part of a repository's content
    error: failed to use swarm's state directory [TMP]/repo/.swarm: git tracks `.swarm` in it, so whoever wrote the commit controls swarm's state
    help: stop tracking it (`git rm -r --cached .swarm` and commit), then remove what the checkout put there; swarm's state is never part of a repository's content
    ");
}

#[test]
fn links_in_the_state_directory_are_refused_and_never_followed() {
    // `.swarm` itself a link (not tracked: made by hand or by a tool).
    let repo = TestRepo::new();
    let before = bait(&repo);
    std::os::unix::fs::symlink(repo.outside().join("dir"), repo.path().join(".swarm")).unwrap();
    let plan = repo.plan("one.toml", ONE);
    // The same for every command.
    let mut said: Option<String> = None;
    for args in [
        vec!["run", plan.to_str().unwrap()],
        vec!["status"],
        vec!["clean", "--all"],
        vec!["resume", "one"],
    ] {
        let out = repo.swarm(&args);
        out.assert_code(2);
        let stderr = redact(&out.stderr, &repo);
        match &said {
            None => said = Some(stderr),
            Some(first) => assert_eq!(&stderr, first, "{args:?}"),
        }
        assert_outside_unchanged(&repo, &before);
    }
    insta::assert_snapshot!(said.unwrap_or_default(), @"
    error: failed to use swarm's state directory: [TMP]/repo/.swarm is a symbolic link, and swarm never follows links in its own state
    help: remove it (`rm [TMP]/repo/.swarm`) if you did not make it; swarm creates what it needs
    ");

    // Links below it, after a real run left a failed task's worktree.
    let repo = TestRepo::new();
    let before = bait(&repo);
    let plan = repo.plan(
        "one.toml",
        "[[task]]\nid = \"a\"\nrun = \"echo a > a.txt; exit 1\"\n",
    );
    repo.run_plan(&plan, &[]).assert_code(1);
    let worktrees = repo.worktree_home().join("one");
    std::fs::remove_dir_all(&worktrees).unwrap();
    std::os::unix::fs::symlink(repo.outside().join("dir"), &worktrees).unwrap();
    let latest = repo.path().join(".swarm/runs/latest");
    std::fs::remove_file(&latest).unwrap();
    std::os::unix::fs::symlink(repo.outside().join("file"), &latest).unwrap();
    // The same for every command.
    let mut said: Option<String> = None;
    for args in [
        vec!["run", plan.to_str().unwrap(), "--name", "two"],
        vec!["run", plan.to_str().unwrap()],
        vec!["status"],
        vec!["status", "one"],
        vec!["clean", "--all"],
        vec!["clean", "one"],
        vec!["resume", "one"],
        vec!["resume"],
    ] {
        let out = repo.swarm(&args);
        out.assert_code(2);
        let stderr = redact(&out.stderr, &repo);
        match &said {
            None => said = Some(stderr),
            Some(first) => assert_eq!(&stderr, first, "{args:?}"),
        }
        assert_outside_unchanged(&repo, &before);
    }
    insta::assert_snapshot!(said.unwrap_or_default(), @"
    error: failed to use swarm's state directory: [TMP]/repo/.swarm/runs/latest is a symbolic link, and swarm never follows links in its own state
    help: remove it (`rm [TMP]/repo/.swarm/runs/latest`) if you did not make it; swarm creates what it needs
    ");
}

#[test]
fn a_damaged_journal_line_is_skipped_by_status_and_logs_but_refused_by_resume() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "two.toml",
        "[swarm]\non_failure = \"continue\"\n\n[[task]]\nid = \"a\"\nrun = \"echo hello-a\"\n\n[[task]]\nid = \"b\"\nrun = \"echo hello-b; exit 1\"\n",
    );
    repo.run_plan(&plan, &[]).assert_code(1);
    let journal = repo.path().join(".swarm/runs/two/events.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    // The last line says the run finished; drop it so resume would go on,
    // and damage the third.
    lines.pop();
    lines[2] = "{\"v\":1,\"event\":\"task_sta\u{1b}[2Jrted\"";
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();

    let status = repo.swarm(&["status", "two"]);
    status.assert_code(0);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&status.stderr, &repo), @r"warning: skipped line 3 of [TMP]/repo/.swarm/runs/two/events.jsonl: it is not a swarm event (control character (\u0000-\u001F) found while parsing a string at line 1 column 25)"));
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&status.stdout, &repo), @r#"

    run two: interrupted (its coordinator is gone); `swarm resume two` continues it
      task  status          time  try  changed  result
      a     merged         [T]s    1        0  refs/swarm/two/a
      b     failed         [T]s    1        0  refs/swarm/two/b

      1 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/two at [HASH]
      warning: `a` changed nothing: it succeeded without changing a file (if it only checks, `isolation = "readonly"` says so)
      b: exited with code 1
      b log: .swarm/runs/two/logs/b/1.err
    "#));
    let logs = repo.swarm(&["logs", "two", "a"]);
    logs.assert_code(0);
    insta::assert_snapshot!(logs.stdout, @"hello-a");
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&logs.stderr, &repo), @r"warning: skipped line 3 of [TMP]/repo/.swarm/runs/two/events.jsonl: it is not a swarm event (control character (\u0000-\u001F) found while parsing a string at line 1 column 25)"));
    let resume = repo.swarm(&["resume", "two"]);
    resume.assert_code(2);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&resume.stderr, &repo), @r"error: failed to resume run `two`: failed to read journal [TMP]/repo/.swarm/runs/two/events.jsonl: line 3 is not a swarm event: control character (\u0000-\u001F) found while parsing a string at line 1 column 25"));
}
