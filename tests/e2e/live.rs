//! The live view, on a real terminal: `swarm run` inside tmux, its screen
//! captured while tasks run and after the run; and without a terminal, its
//! lines (one per event), snapshotted.

use std::process::Command;
use std::time::Duration;

use crate::support::{TestRepo, redact, snapshot_settings, stable_stderr, swarm_bin, wait_until};

struct Tmux {
    socket: std::path::PathBuf,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "live"]).stdout)
            .into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn the_live_view_shows_running_tasks_and_clears_for_the_summary() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "live.toml",
        "[[task]]\nid = \"slow-a\"\nrun = \"sleep 3; echo a > a.txt\"\n\n[[task]]\nid = \"slow-b\"\nrun = \"sleep 3; echo b > b.txt\"\n\n[[task]]\nid = \"after\"\ndeps = [\"slow-a\", \"slow-b\"]\nrun = \"cat a.txt b.txt > ab.txt\"\n",
    );
    let tmux = Tmux {
        socket: repo.root().join("tmux.sock"),
    };
    let script = format!(
        "cd {repo} && env -i PATH=\"$PATH\" HOME={home} GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 LC_ALL=C TERM=xterm {swarm} run -j 2 {plan}; echo EXITED $?; sleep 60",
        repo = repo.path().display(),
        home = repo.home().display(),
        swarm = swarm_bin(),
        plan = plan.display(),
    );
    let started = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "live",
        "-x",
        "120",
        "-y",
        "40",
        "sh",
        "-c",
        &script,
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );

    // While both run: the block names them, with their kind and time, and
    // counts what is left.
    let mut screen = String::new();
    wait_until("the live view to show both tasks running", || {
        screen = tmux.screen();
        screen.contains("2 running, 1 queued, 0/3 done (0 failed), critical path left 2")
            && screen.contains("> slow-a")
            && screen.contains("> slow-b")
    });
    // The block: its line of counts, then a row per running task (in the
    // order they started) with its kind and time. The two start at the
    // same moment, and which the coordinator hears of first depends on the
    // machine's load (slow-b came first on a loaded machine): the rows are
    // compared in name order.
    let mut block: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.starts_with("  -- "))
        .take_while(|l| l.starts_with("  -- ") || l.starts_with("  > "))
        .map(str::trim_end)
        .collect();
    if let Some(rows) = block.get_mut(1..) {
        rows.sort_unstable();
    }
    let mut settings = snapshot_settings();
    // The rows' times: `{:>7.1}s`, under three seconds here.
    settings.add_filter(r"(?m)\b\d\.\ds$", "[T]s");
    settings.bind(|| insta::assert_snapshot!("running_block", block.join("\n")));
    // Time moves on in place: the block is redrawn, not repeated.
    std::thread::sleep(Duration::from_millis(1200));
    let later = tmux.screen();
    assert_eq!(later.matches("> slow-a").count(), 1, "{later}");

    wait_until("the run to end", || tmux.screen().contains("EXITED 0"));
    let end = tmux.screen();
    // What is left at the bottom of the screen: the summary, no block.
    let at = end
        .find("run live: succeeded")
        .unwrap_or_else(|| panic!("no summary on screen:\n{end}"));
    let summary = end[at..].trim_end();
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("summary_on_a_terminal", redact(summary, &repo));
    });
    assert!(
        !end.contains(" running, "),
        "the block was left on screen:\n{end}"
    );
    // The event lines stay, in order, above the summary.
    let merged = end.find("merged     after").unwrap();
    assert!(merged < end.find("run live: succeeded").unwrap(), "{end}");
}

/// A chain, so that its events come in one order: a writing task, one that
/// fails its first attempt and is retried, and a read-only check.
const CHAIN: &str = r#"[[task]]
id = "fetch"
run = "echo data > data.txt"

[[task]]
id = "flaky-step"
deps = ["fetch"]
retries = 1
run = "echo try $SWARM_ATTEMPT > flaky.txt; test $SWARM_ATTEMPT -gt 1"

[[task]]
id = "report"
deps = ["flaky-step"]
isolation = "readonly"
run = "cat data.txt flaky.txt"
"#;

/// The lines of the live view, up to the summary, in one order (see
/// `stable_stderr`).
fn live_lines(stderr: &str) -> String {
    let at = stderr.find("\n\nrun ").unwrap_or(stderr.len());
    stable_stderr(&stderr[..=at])
}

/// Without a terminal (a CI log, a pipe), the live view is one line per
/// event and nothing redrawn.
#[test]
fn without_a_terminal_the_live_view_prints_one_line_per_event() {
    let repo = TestRepo::new();
    let plan = repo.plan("chain.toml", CHAIN);
    let run = repo.run_plan(&plan, &["--name", "chain", "-j", "1", "--sandbox", "none"]);
    run.assert_code(0);
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("live_lines", redact(&live_lines(&run.stderr), &repo));
    });
}

/// A resumed run says what it resumes, then goes on as a run does.
#[test]
fn a_resumed_run_says_what_it_runs_again() {
    let repo = TestRepo::new();
    let plan = repo.plan("chain.toml", CHAIN);
    repo.run_plan(&plan, &["--name", "again", "-j", "1", "--sandbox", "none"])
        .assert_code(0);
    // The coordinator died as `report` ran: its start is the last line.
    let journal = repo.path().join(".swarm/runs/again/events.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let cut = text
        .find("\"event\":\"task_started\",\"task\":\"report\"")
        .unwrap();
    let end = cut + text[cut..].find('\n').unwrap() + 1;
    std::fs::write(&journal, &text[..end]).unwrap();
    let run = repo.swarm(&["resume", "again", "-j", "1", "--sandbox", "none"]);
    run.assert_code(0);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(
            "resumed_live_lines",
            redact(&live_lines(&run.stderr), &repo)
        );
    });
}
