//! `swarm completions SHELL`: a completion script for a shell, without
//! the hidden internal commands.

use crate::failure::Failure;

/// `swarm completions`'s command line.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// `swarm completions SHELL` for the command line `command` (swarm's, given
/// by the caller so that this file need not know it).
pub(crate) fn cmd_completions(
    args: CompletionsArgs,
    command: clap::Command,
) -> Result<i32, Failure> {
    print!("{}", completions(args.shell, command));
    Ok(swarm_orchestrator::exit::SUCCESS)
}

/// The completion script for `shell`. clap_complete's bash script offers
/// hidden subcommands too (`__sandbox`, ...): they are taken out of the
/// words it offers, as the other shells' scripts leave them out.
fn completions(shell: clap_complete::Shell, mut command: clap::Command) -> String {
    let hidden: Vec<String> = command
        .get_subcommands()
        .filter(|c| c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .collect();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "swarm", &mut script);
    let script = String::from_utf8_lossy(&script);
    script
        .lines()
        .map(|line| {
            let Some((head, rest)) = line.split_once("opts=\"") else {
                return line.to_string();
            };
            let Some((words, tail)) = rest.rsplit_once('"') else {
                return line.to_string();
            };
            let kept: Vec<&str> = words
                .split(' ')
                .filter(|w| !hidden.iter().any(|h| w == h))
                .collect();
            format!("{head}opts=\"{}\"{tail}", kept.join(" "))
        })
        .map(|line| line + "\n")
        .collect()
}
