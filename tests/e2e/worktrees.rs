//! Task worktrees live outside the repository, so that tools which walk up
//! the directory tree (cargo looking for a workspace, npm for
//! `node_modules`) see a clone, not the user's repository around it; where
//! they go is configurable, never inside the repository, and swarm removes
//! nothing in a directory that a journal merely claims is its own.

use crate::sandbox::sandbox_available;
use crate::support::{TestRepo, redact, snapshot_settings, task};
use crate::toolchains::{cargo_home, swarm_with_cargo};

#[test]
fn worktrees_are_outside_the_repository_where_cargo_finds_no_outer_package() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    // A package at the repository's root with no `[workspace]` table: from
    // a worktree inside the repository, cargo walked up to this file (and
    // the sandbox refused to let it read it).
    repo.write(
        "Cargo.toml",
        "[package]\nname = \"outer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    repo.write("src/lib.rs", "pub fn outer() {}\n");
    repo.write(".gitignore", "target/\nCargo.lock\n");
    repo.commit_all("a crate at the root");
    let plan = repo.plan(
        "w.toml",
        "[swarm]\nname = \"w\"\n\n[[task]]\nid = \"meta\"\nrun = '''\n\
         cargo metadata --offline --no-deps --format-version 1 > meta.json\n\
         pwd > where.txt\n'''\n",
    );
    let cargo = cargo_home(&repo);
    let run = swarm_with_cargo(&repo, &cargo, &["run", plan.to_str().unwrap()]);
    run.assert_code(0);
    let meta = repo.show("swarm/w", "meta.json");
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    let worktree = repo.worktree("w", "meta");
    // The workspace cargo saw is the worktree itself.
    assert_eq!(
        meta["workspace_root"].as_str(),
        Some(worktree.to_str().unwrap()),
        "{meta}"
    );
    assert_eq!(meta["packages"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        repo.show("swarm/w", "where.txt"),
        worktree.display().to_string()
    );
    assert!(!worktree.starts_with(repo.path()));
    assert!(worktree.starts_with(repo.home().join(".cache/swarm/worktrees")));
    // The journal records where the run's worktrees are.
    let journal = std::fs::read_to_string(repo.path().join(".swarm/runs/w/events.jsonl")).unwrap();
    assert!(
        journal.contains(&format!(
            "\"worktrees\":\"{}\"",
            repo.worktree_home().display()
        )),
        "{journal}"
    );
    assert!(!repo.path().join(".swarm/worktrees").exists());
}

#[test]
fn the_worktree_directory_is_configurable_but_never_inside_the_repository() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "c.toml",
        "[defaults]\nwarm = false\n\n[swarm]\nname = \"c\"\nsandbox = \"none\"\n\n[[task]]\nid = \"t\"\nrun = \"pwd > where.txt\"\n",
    );
    // Inside the repository: refused before anything is made.
    let inside = repo.path().join("wt");
    let run = repo.run_plan(&plan, &["--worktrees", inside.to_str().unwrap()]);
    run.assert_code(2);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&run.stderr, &repo), @"
    error: failed to use [TMP]/repo/wt for worktrees: it is inside the repository [TMP]/repo, where tools that walk up the directory tree (cargo, npm, go, git) would find the repository's own files
    help: choose an absolute directory outside the repository (--worktrees DIR, or `worktrees` in [swarm])
    "));
    assert!(repo.swarm_traces().is_empty(), "{:?}", repo.swarm_traces());

    // In the plan, relative: an error at its line.
    let relative = repo.plan(
        "r.toml",
        "[swarm]\nworktrees = \"wt\"\n\n[[task]]\nid = \"t\"\nrun = \"true\"\n",
    );
    let out = repo.swarm(&["validate", relative.to_str().unwrap()]);
    out.assert_code(2);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&out.stderr, &repo), @r#"
    error: invalid plan
      × `worktrees` directory `wt` is relative
       ╭─[[TMP]/plans/r.toml:2:13]
     1 │ [swarm]
     2 │ worktrees = "wt"
       ·             ──┬─
       ·               ╰── not an absolute path
     3 │ 
       ╰────
      help: write an absolute path outside the repository, or one that starts with ~/
    "#)
    });

    // Elsewhere, by flag: under DIR, in the repository's own directory.
    let dir = repo.outside().join("fast-disk");
    repo.run_plan(&plan, &["--worktrees", dir.to_str().unwrap()])
        .assert_code(0);
    let seen = repo.show("swarm/c", "where.txt");
    let home = repo.worktree_home();
    let expected = dir.join(home.file_name().unwrap()).join("c/t");
    assert_eq!(seen, expected.display().to_string());
    assert!(!repo.worktree_root().exists());

    // And by the plan's key.
    let keyed = repo.plan(
        "k.toml",
        &format!(
            "[defaults]\nwarm = false\n\n[swarm]\nname = \"k\"\nsandbox = \"none\"\nworktrees = \"{}\"\n\n[[task]]\nid = \"t\"\nrun = \"pwd > where.txt\"\n",
            repo.outside().join("other").display()
        ),
    );
    repo.run_plan(&keyed, &[]).assert_code(0);
    assert!(
        repo.show("swarm/k", "where.txt")
            .starts_with(repo.outside().join("other").to_str().unwrap())
    );
}

#[test]
fn clean_leaves_alone_a_directory_a_forged_journal_names() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "f.toml",
        "[swarm]\nname = \"f\"\nsandbox = \"none\"\n\n[[task]]\nid = \"bad\"\nrun = \"echo half > half.txt; exit 1\"\n",
    );
    repo.run_plan(&plan, &[]).assert_code(1);
    // Someone's directory, shaped like a worktree home of run `f`.
    let victim = repo.outside().join("victim");
    std::fs::create_dir_all(victim.join("f/bad")).unwrap();
    std::fs::write(victim.join("f/bad/precious.txt"), "mine\n").unwrap();
    let journal = repo.path().join(".swarm/runs/f/events.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let home = repo.worktree_home().display().to_string();
    assert!(text.contains(&home));
    std::fs::write(&journal, text.replace(&home, victim.to_str().unwrap())).unwrap();

    let out = repo.swarm(&["clean", "f"]);
    out.assert_code(1);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&out.stderr, &repo), @"
    error: run f: failed to use worktree home [TMP]/outside/victim: it belongs to another repository (none recorded), so swarm leaves it alone
    swarm clean left the above in place; everything else was freed
    "));
    assert_eq!(
        std::fs::read_to_string(victim.join("f/bad/precious.txt")).unwrap(),
        "mine\n"
    );
    // The real worktree is untouched too: its work is still there.
    assert!(repo.worktree("f", "bad").join("half.txt").exists());
    assert_eq!(task(&repo.report(), "bad")["status"], "failed");
}

#[test]
fn a_relative_worktree_directory_with_dot_dot_works_for_every_kind_of_task() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "rel.toml",
        "[defaults]\nwarm = false\n\n[swarm]\nname = \"rel\"\nsandbox = \"none\"\n\n\
         [[task]]\nid = \"look\"\nisolation = \"readonly\"\nrun = \"test -f README.md\"\n\n\
         [[task]]\nid = \"write\"\nrun = \"pwd > where.txt\"\n",
    );
    // Given as a user types it in the repository: `..` and all.
    let run = repo.run_plan(&plan, &["--worktrees", "../outside/wt"]);
    run.assert_code(0);
    let report = repo.report();
    assert_eq!(task(&report, "look")["status"], "succeeded");
    assert_eq!(task(&report, "write")["status"], "merged");
    // Recorded without the `..`, where git keeps it.
    let seen = repo.show("swarm/rel", "where.txt");
    let home = repo.worktree_home();
    let expected = repo
        .outside()
        .canonicalize()
        .unwrap()
        .join("wt")
        .join(home.file_name().unwrap())
        .join("rel/write");
    assert_eq!(seen, expected.display().to_string());
}
