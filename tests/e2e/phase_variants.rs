//! Variants of issue 73's findings through other phases, caches and
//! resumes, found by attacking the fixed code: each is a real run of the
//! `swarm` binary in the real sandbox.

use crate::sandbox::sandbox_available;
use crate::support::{TestRepo, task};

/// A repository whose `[setup]` (`setup.sh`, tracked) makes `.tools/`
/// (ignored), keyed by `deps.lock`.
fn keyed_project() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("deps.lock", "one\n");
    repo.write(".gitignore", ".tools/\n");
    repo.write(
        "setup.sh",
        "mkdir -p .tools && echo made > .tools/setup.txt\n",
    );
    repo.commit_all("a project with a keyed setup");
    repo
}

/// `swarm resume` runs the setups of the run's base: a resumed run knew
/// its base only once the journal was read, after its setups were made
/// for the null commit, and every setup with a key then failed.
#[test]
fn a_resumed_run_sets_up_its_worktrees_as_the_run_did() {
    let repo = keyed_project();
    if !sandbox_available(&repo) {
        return;
    }
    let plan = repo.plan(
        "resume.toml",
        "[swarm]\nname = \"res\"\n\n[setup]\nrun = \"sh setup.sh\"\nkey = [\"deps.lock\"]\n\n\
         [[task]]\nid = \"t\"\nrun = '''\n\
         [ \"$SWARM_ATTEMPT\" = 2 ] || exit 1\n\
         test -f .tools/setup.txt && echo t > t.txt\n'''\n",
    );
    repo.run_plan(&plan, &[]).assert_code(1);
    let resumed = repo.swarm(&["resume", "res", "--retry-failed"]);
    resumed.assert_code(0);
    assert_eq!(
        task(&repo.report(), "t")["status"],
        "merged",
        "{}",
        resumed.stderr
    );
}

/// `[setup]`'s own build caches (`<home>/.cache/@setup/`) are kept, as the
/// run-wide verify's are, only along the history of the base whose setup
/// wrote them: a setup (with its own network and variables) finds there
/// nothing a setup of another base wrote. A pull request's setup planted
/// a file in them that main's setup then found; the forward path (a later
/// commit of main) still finds main's.
#[test]
fn setups_build_caches_never_carry_one_bases_setup_into_anothers() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let cache = "d=\"${CARGO_TARGET_DIR:-${PIP_CACHE_DIR:-${npm_config_cache:?no build cache}}}\"";
    repo.write("deps.lock", "one\n");
    repo.write(
        "setup.sh",
        &format!(
            "{cache}\nif [ -e \"$d/planted\" ]; then echo poisoned >&2; exit 1; fi\necho main > \"$d/main\"\n"
        ),
    );
    repo.commit_all("main");
    let main = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    repo.write(
        "setup.sh",
        &format!("{cache}\necho evil > \"$d/planted\" && echo planted >&2\n"),
    );
    repo.commit_all("a pull request");
    let pr = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    repo.git(&["checkout", "-q", &main, "--", "setup.sh"]);
    repo.write("setup.sh", &format!("{cache}\ntest -e \"$d/main\"\n"));
    repo.commit_all("main, later");
    let later = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    let plan = repo.plan(
        "caches.toml",
        "[setup]\nrun = \"sh setup.sh\"\nkey = [\"deps.lock\"]\n\n[[task]]\nid = \"t\"\nrun = \"echo t > t.txt\"\n",
    );
    let on_pr = repo.run_plan(&plan, &["--base", &pr, "--name", "pr"]);
    on_pr.assert_code(0);
    let planted = std::fs::read_to_string(repo.path().join(".swarm/runs/pr/logs/t/1.setup.err"))
        .unwrap_or_default();
    assert!(planted.contains("planted"), "{planted}\n{}", on_pr.stderr);
    for (base, name) in [(&main, "main"), (&later, "later")] {
        let run = repo.run_plan(&plan, &["--base", base, "--name", name]);
        run.assert_code(0);
        assert_eq!(
            task(&repo.report(), "t")["status"],
            "merged",
            "{}",
            run.stderr
        );
    }
}

/// The coordinator's git runs a filter driver of the person's (git-lfs,
/// git-crypt) only on the person's files: a task's `.gitattributes` that
/// routes a file of its own through one made swarm run it, unconfined (as
/// root), when it checked out the task's result for a dependent, for the
/// run-wide verify and for a warm worktree (git-lfs would then fetch what
/// the task's `.lfsconfig` names: a network for a task without one), and
/// for a plan from outside whose base is a branch tasks wrote. The
/// person's own files still go through it.
#[test]
fn no_filter_driver_runs_on_a_file_a_task_routed_to_it() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let log = repo.outside().join("filtered");
    repo.git(&[
        "config",
        "filter.note.smudge",
        &format!("sh -c 'echo \"$0\" >> {}; cat' %f", log.display()),
    ]);
    repo.git(&["config", "filter.note.clean", "cat"]);
    repo.write(".gitattributes", "notes.txt filter=note\n");
    repo.write("notes.txt", "the person's\n");
    repo.commit_all("a file of the person's goes through a filter");
    let plan = |name: &str| {
        repo.plan(
            &format!("{name}.toml"),
            &format!(
                "[swarm]\nname = \"{name}\"\nverify = \"grep -qx {name} pwn.txt\"\n\n\
                 [[task]]\nid = \"a\"\nrun = '''\nprintf 'notes.txt filter=note\\npwn.txt filter=note\\n' > .gitattributes\necho {name} > pwn.txt\n'''\n\n\
                 [[task]]\nid = \"b\"\ndeps = [\"a\"]\n\
                 run = \"grep -qx {name} pwn.txt && echo b > b-{name}.txt\"\n"
            ),
        )
    };
    for name in ["one", "two"] {
        let run = repo.run_plan(&plan(name), &[]);
        run.assert_code(0);
        assert_eq!(
            task(&repo.report(), "b")["status"],
            "merged",
            "{}",
            run.stderr
        );
    }
    // A plan from outside (an MCP client) may start from a branch tasks
    // wrote: its base is not the person's.
    let open = "[swarm]\nbase = \"swarm/two\"\n\n[[task]]\nid = \"x\"\nrun = \"grep -qx two pwn.txt && echo x > x.txt\"\n";
    let hash = swarm_orchestrator::trust::content_hash(open.as_bytes());
    let kept = repo.path().join(format!(".swarm/mcp/plans/{hash}.toml"));
    std::fs::create_dir_all(kept.parent().unwrap()).unwrap();
    std::fs::write(&kept, open).unwrap();
    let mcp = repo.swarm(&["run", kept.to_str().unwrap(), "--origin=mcp", "--name=mcp"]);
    mcp.assert_code(0);
    let filtered = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(filtered.contains("notes.txt"), "{filtered}");
    assert!(
        !filtered.contains("pwn.txt"),
        "the person's filter ran on a task's file:\n{filtered}"
    );
}
