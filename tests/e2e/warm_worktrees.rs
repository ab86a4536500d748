//! Warm worktrees: a task's worktree kept between runs at one path and
//! brought to the new base by git, so that cargo rebuilds only what
//! changed; a failed attempt's work is on its ref before the worktree is
//! reset; `swarm clean --warm` frees them; `warm = false` opts out.

use crate::support::TestRepo;
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
         echo scratch > untracked.txt\ncargo build --offline\npwd >&2\n'''\n",
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
    assert!(clean.stdout.contains(".warm/build"), "{}", clean.stdout);
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
