//! `swarm`: the command line. The only part of swarm that reads the
//! environment, installs signal handlers or prints.

// Printing never panics: a closed or full stdout or stderr (`swarm run
// plan.toml 2>&1 >/dev/null | true`, `2>/dev/full`) loses what was printed,
// never the command's exit code. These shadow the standard macros in every
// module of the binary (declared below them); the standard ones panic when
// the write fails, which turned a finished run into exit 101.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
macro_rules! eprint {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! print {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

mod cli;
mod commands;
mod common;
mod config_origin;
mod drive;
mod failure;
mod host;
mod output;
mod planning;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // The sandbox launcher and the agent worker must stay single-threaded
    // and quiet.
    if !matches!(args.command, cli::Command::Sandbox(_) | cli::Command::Agent) {
        init_tracing(args.log_file.as_deref());
    }
    // Commands that only print end quietly when their reader goes away
    // (`swarm status | head`); `run` keeps SIGPIPE ignored, so a closed pipe
    // can never kill a run and its workers.
    if !matches!(
        args.command,
        cli::Command::Run(_)
            | cli::Command::Land(_)
            | cli::Command::Sandbox(_)
            | cli::Command::Agent
            | cli::Command::Mcp
    ) {
        swarm_sandbox::process::default_sigpipe();
    }
    let code = match cli::main(args) {
        Ok(code) => code,
        Err(failure) => {
            output::print_failure(&failure);
            failure.exit_code()
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}

fn init_tracing(log_file: Option<&std::path::Path>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match log_file.map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
    }) {
        Some(Ok(file)) => builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .init(),
        Some(Err(e)) => {
            builder.with_writer(std::io::stderr).init();
            tracing::warn!(error = %e, "failed to open the log file; logging to stderr");
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
}
