//! Hostile worktrees against the snapshot (issue 14, classes 7 and 8): a
//! task must not be able to make the coordinator spend memory or time in
//! proportion to what it wrote, nor lose its own work by creating one path
//! git refuses.

use std::time::{Duration, Instant};

use crate::support::{TestRepo, task};

/// Peak resident memory (`VmHWM`, KiB) of process `pid`, if it is alive.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Whether `rev:path` names an object.
fn has_file(repo: &TestRepo, object: &str) -> bool {
    repo.git_output(&["cat-file", "-e", object])
        .status
        .success()
}

#[test]
fn a_huge_sparse_file_and_task_written_attributes_cost_the_coordinator_nothing() {
    let repo = TestRepo::new();
    let p = repo.plan(
        "big.toml",
        r#"[swarm]
name = "big"
sandbox = "none"

[[task]]
id = "big"
memory = "64MiB"
run = '''
printf '* text eol=crlf\n* filter=evil ident\n' > .gitattributes
truncate -s 2G big.bin
printf 'a\r\nb\r\n' > normal.txt
printf '$Id: kept $\n' > ident.txt
'''
"#,
    );
    let plan = p.to_str().unwrap();
    let started = Instant::now();
    let mut child = repo
        .swarm_cmd(&["run", plan])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // VmHWM only grows, so the last reading before the coordinator exits
    // is its peak (a snapshot that read the file would hold it for seconds).
    let mut peak_kib = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak_kib = peak_kib.max(kib);
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the run is taking too long"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(peak_kib > 0, "never saw the coordinator's memory");
    assert!(
        peak_kib < 300 * 1024,
        "the coordinator's peak RSS was {peak_kib} KiB"
    );
    // The summary says what the ref lacks.
    assert!(
        stderr.contains("big: 1 file not committed (see the report):\n    big.bin: too large (2.0 GiB, over max_file_size of 100.0 MiB)"),
        "{stderr}"
    );

    // Exact bytes, whatever the task's .gitattributes say.
    let normal = repo.git_output(&["cat-file", "blob", "refs/swarm/big/big:normal.txt"]);
    assert_eq!(normal.stdout, b"a\r\nb\r\n");
    assert_eq!(repo.show("refs/swarm/big/big", "ident.txt"), "$Id: kept $");
    assert!(!has_file(&repo, "refs/swarm/big/big:big.bin"));
    assert!(has_file(&repo, "refs/swarm/big/big:.gitattributes"));
    assert!(has_file(&repo, "swarm/big:normal.txt"));

    let report = repo.report();
    let t = task(&report, "big");
    assert_eq!(t["status"], "merged");
    assert_eq!(
        t["skipped_files"],
        serde_json::json!([{
            "path": "big.bin",
            "reason": "too_large",
            "size": 2u64 << 30,
            "limit": 100u64 << 20,
        }])
    );
    // Reading 2 GiB took the old snapshot over ten seconds.
    let snapshot_ms = t["snapshot_ms"].as_u64().unwrap_or(0);
    assert!(snapshot_ms < 5000, "the snapshot took {snapshot_ms} ms");
    // Whoever reads the commit learns what is missing from it.
    let message = repo.git(&["log", "-1", "--format=%B", "refs/swarm/big/big"]);
    assert!(
        message.contains("big.bin: too large (2.0 GiB, over max_file_size of 100.0 MiB)"),
        "{message}"
    );
}

#[test]
fn a_path_git_refuses_is_reported_and_everything_else_merged() {
    let repo = TestRepo::new();
    let p = repo.plan(
        "refused.toml",
        r#"[swarm]
name = "refused"
sandbox = "none"

[defaults]
max_file_size = "1KiB"

[[task]]
id = "sneaky"
run = '''
mkdir -p GIT~1 .GIT sub/.git
echo '[core]' > GIT~1/config
echo '[core]' > .GIT/config
echo '[core]' > sub/.git/config
echo work > work.txt
echo edited >> src/lib.txt
head -c 2048 /dev/zero > large.bin
'''
"#,
    );
    repo.run_plan(&p, &[]).assert_code(0);
    assert_eq!(repo.show("swarm/refused", "work.txt"), "work");
    assert!(!has_file(&repo, "swarm/refused:large.bin"));
    assert_eq!(repo.show("swarm/refused", "src/lib.txt"), "fn main\nedited");
    let report = repo.report();
    let t = task(&report, "sneaky");
    assert_eq!(t["status"], "merged");
    assert_eq!(t["reason"], serde_json::Value::Null);
    let skipped = t["skipped_files"].as_array().unwrap();
    let listed: Vec<(&str, &str)> = skipped
        .iter()
        .map(|s| (s["path"].as_str().unwrap(), s["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            (".GIT", "refused"),
            ("GIT~1", "refused"),
            ("large.bin", "too_large"),
            ("sub/.git", "refused"),
        ]
    );
    assert_eq!(skipped[2]["limit"], 1024);
    assert_eq!(
        t["changed_files"],
        serde_json::json!(["src/lib.txt", "work.txt"])
    );
}
