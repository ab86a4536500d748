//! Everyday tools inside the sandbox (issue 30): what people run in their
//! tasks works under swarm as it does outside. Python's multiprocessing
//! (a `Pool`, a `Lock`: POSIX shared memory and semaphores) needs a
//! `/dev/shm`; each sandboxed task gets a private one, which is neither
//! the host's nor another task's.

use crate::sandbox::sandbox_available;
use crate::support::{TestRepo, task};

#[test]
fn python_multiprocessing_works_in_a_private_dev_shm() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    // A file on the host's /dev/shm that no task may see.
    let marker = format!("/dev/shm/swarm-e2e-{}", std::process::id());
    std::fs::write(&marker, "host").unwrap();
    let script = r#"
import multiprocessing as mp, os
def square(x):
    return x * x
if __name__ == "__main__":
    lock = mp.Lock()
    with lock:
        pass
    with mp.Pool(2) as pool:
        total = sum(pool.map(square, range(10)))
    seen = sorted(os.listdir("/dev/shm"))
    open("out/pool.txt", "w").write(f"{total} {seen}\n")
"#;
    repo.write("pool.py", script);
    repo.commit_all("a multiprocessing script");
    let plan = repo.plan(
        "shm.toml",
        "[swarm]\nname = \"shm\"\n\n[[task]]\nid = \"pool\"\ncreates = [\"out\"]\nrun = \"mkdir -p out && python3 pool.py\"\n\n[[task]]\nid = \"writer\"\ncreates = [\"w.txt\"]\nrun = \"echo mine > /dev/shm/mine && cat /dev/shm/mine > w.txt\"\n",
    );
    let out = repo.run_plan(&plan, &[]);
    let _ = std::fs::remove_file(&marker);
    out.assert_code(0);
    let report = repo.report();
    assert_eq!(task(&report, "pool")["status"], "merged", "{report}");
    // 285 = the sum of the squares below 10; the listing is of the task's
    // own /dev/shm: neither the host's marker nor the other task's file.
    assert_eq!(repo.show("swarm/shm", "out/pool.txt"), "285 []");
    assert_eq!(repo.show("swarm/shm", "w.txt"), "mine");
}
