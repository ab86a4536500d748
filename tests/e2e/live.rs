//! The live view, on a real terminal: `swarm run` inside tmux, its screen
//! captured while tasks run and after the run.

use std::process::Command;
use std::time::Duration;

use crate::support::{TestRepo, swarm_bin, wait_until};

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
    wait_until("the live view to show both tasks running", || {
        let screen = tmux.screen();
        screen.contains("2 running, 1 queued, 0/3 done (0 failed), critical path left 2")
            && screen.contains("> slow-a")
            && screen.contains("> slow-b")
    });
    let screen = tmux.screen();
    let row = screen.lines().find(|l| l.contains("> slow-a")).unwrap();
    assert!(
        row.contains("command") && row.trim_end().ends_with('s'),
        "{row:?}"
    );
    // Time moves on in place: the block is redrawn, not repeated.
    std::thread::sleep(Duration::from_millis(1200));
    let later = tmux.screen();
    assert_eq!(later.matches("> slow-a").count(), 1, "{later}");

    wait_until("the run to end", || tmux.screen().contains("EXITED 0"));
    let end = tmux.screen();
    assert!(end.contains("run live: succeeded"), "{end}");
    assert!(
        !end.contains(" running, "),
        "the block was left on screen:\n{end}"
    );
    // The event lines stay, in order, above the summary.
    let merged = end.find("merged     after").unwrap();
    assert!(merged < end.find("run live: succeeded").unwrap(), "{end}");
}
