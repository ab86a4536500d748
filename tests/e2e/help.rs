//! `--help` of every command, pinned: what a user reads first. The
//! commands are found by walking `swarm --help` (and each command's own
//! help, for nested ones), so a new command without a snapshot here fails
//! `every_command_has_its_help_pinned`.

use std::process::Command;

use crate::support::{Run, hermetic, swarm_bin};

/// The commands whose `--help` is pinned below (`""`: `swarm` itself).
const PINNED: [&str; 19] = [
    "",
    "run",
    "resume",
    "land",
    "plan",
    "trust",
    "validate",
    "graph",
    "status",
    "report",
    "trace",
    "runs",
    "clean",
    "resolve",
    "logs",
    "compare",
    "doctor",
    "mcp",
    "completions",
];

/// The commands whose short help (`-h`) is not their long help
/// (`--help`): those with more to say than a line; pinned as well.
const PINNED_SHORT: [&str; 3] = ["clean", "resolve", "logs"];

/// `swarm COMMAND... FLAG` with the hermetic environment, in an empty
/// directory; its stdout, after checking it succeeded and said nothing on
/// stderr.
fn swarm_out(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(swarm_bin());
    hermetic(&mut cmd, dir.path());
    let run: Run = cmd
        .current_dir(dir.path())
        .args(args)
        .output()
        .unwrap()
        .into();
    run.assert_code(0);
    assert_eq!(run.stderr, "", "swarm {args:?} wrote to stderr");
    run.stdout
}

/// `swarm COMMAND --help` (`command` is space-separated, `""` for
/// `swarm` itself).
fn help(command: &str) -> String {
    let mut args: Vec<&str> = command.split_whitespace().collect();
    args.push("--help");
    swarm_out(&args)
}

/// `swarm COMMAND -h`.
fn short_help(command: &str) -> String {
    let mut args: Vec<&str> = command.split_whitespace().collect();
    args.push("-h");
    swarm_out(&args)
}

/// The subcommands a help text lists under `Commands:`, but `help`.
fn commands_of(help: &str) -> Vec<String> {
    let Some(at) = help.find("\nCommands:\n") else {
        return Vec::new();
    };
    help[at + "\nCommands:\n".len()..]
        .lines()
        .take_while(|line| line.starts_with("  "))
        // Only a command's first line names it; a long description's
        // continuation lines are indented further.
        .filter(|line| !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every visible command, nested ones as `parent child`, walked from
/// `swarm --help`; `""` for `swarm` itself.
fn every_command() -> Vec<String> {
    let mut found = vec![String::new()];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next].clone();
        for child in commands_of(&help(&parent)) {
            found.push(format!("{parent} {child}").trim().to_string());
        }
        next += 1;
    }
    found
}

#[test]
fn every_command_has_its_help_pinned() {
    let commands = every_command();
    assert_eq!(
        commands, PINNED,
        "a command was added or removed: pin its `--help` in help_of_every_command_is_pinned"
    );
    // `swarm help COMMAND` says the same as `swarm COMMAND --help`.
    for command in &commands[1..] {
        assert_eq!(swarm_out(&["help", command]), help(command), "{command}");
    }
    let short: Vec<&str> = commands
        .iter()
        .filter(|c| short_help(c) != help(c))
        .map(String::as_str)
        .collect();
    assert_eq!(
        short, PINNED_SHORT,
        "a command's `-h` now differs from its `--help`: pin it in short_help_is_pinned"
    );
}

#[test]
fn help_of_every_command_is_pinned() {
    insta::assert_snapshot!("swarm", help(""));
    insta::assert_snapshot!("run", help("run"));
    insta::assert_snapshot!("resume", help("resume"));
    insta::assert_snapshot!("land", help("land"));
    insta::assert_snapshot!("plan", help("plan"));
    insta::assert_snapshot!("trust", help("trust"));
    insta::assert_snapshot!("validate", help("validate"));
    insta::assert_snapshot!("graph", help("graph"));
    insta::assert_snapshot!("status", help("status"));
    insta::assert_snapshot!("report", help("report"));
    insta::assert_snapshot!("trace", help("trace"));
    insta::assert_snapshot!("runs", help("runs"));
    insta::assert_snapshot!("clean", help("clean"));
    insta::assert_snapshot!("resolve", help("resolve"));
    insta::assert_snapshot!("logs", help("logs"));
    insta::assert_snapshot!("compare", help("compare"));
    insta::assert_snapshot!("doctor", help("doctor"));
    insta::assert_snapshot!("mcp", help("mcp"));
    insta::assert_snapshot!("completions", help("completions"));
}

#[test]
fn short_help_is_pinned() {
    insta::assert_snapshot!("clean_short", short_help("clean"));
    insta::assert_snapshot!("resolve_short", short_help("resolve"));
    insta::assert_snapshot!("logs_short", short_help("logs"));
}
