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
    repo.write("setup.sh", "mkdir -p .tools && echo made > .tools/setup.txt\n");
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
