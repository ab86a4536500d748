//! Builds the repository map the planner shows the model, for
//! `bench/repomap.py` and for looking at maps by hand:
//!
//! ```text
//! cargo run --release -p swarm --example repomap -- REPO GOAL [--budget TOKENS] [--rev REV] [--print] [--unverified]
//! ```
//!
//! Prints one line of `key=value` fields to stdout (`ms`: the time
//! `repomap::build` took, in process; `tokens`, `files`, `bytes` of the
//! map), the inferred commands to stderr, and with `--print` the map itself
//! after the line. `--unverified` turns off libgit2's check of every object
//! it reads against its id (a process-wide option, on by default and in
//! swarm), to show what that check costs.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use swarm_orchestrator::git::Repo;
use swarm_orchestrator::repomap::{self, MapOptions};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(goal)) = (args.next(), args.next()) else {
        bail!("usage: repomap REPO GOAL [--budget TOKENS] [--rev REV] [--print] [--unverified]");
    };
    let mut options = MapOptions {
        goal,
        ..MapOptions::default()
    };
    let mut rev = "HEAD".to_string();
    let mut print = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--budget" => {
                options.token_budget = args.next().context("--budget needs a number")?.parse()?;
            }
            "--rev" => rev = args.next().context("--rev needs a revision")?,
            "--print" => print = true,
            "--unverified" => git2::opts::strict_hash_verification(false),
            other => bail!("unknown argument {other}"),
        }
    }
    let repo = Repo::discover(Path::new(&dir))?;
    let commit = repo.resolve(&rev)?;
    let start = Instant::now();
    let map = repomap::build(&repo, commit, &options)?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    println!(
        "ms={ms:.1} tokens={} files={} bytes={}",
        map.tokens,
        map.files,
        map.text.len()
    );
    eprintln!(
        "test: {}; build: {}; hash {}",
        map.test_command.as_deref().unwrap_or("none"),
        map.build_command.as_deref().unwrap_or("none"),
        map.hash
    );
    if print {
        print!("{}", map.text);
    }
    Ok(())
}
