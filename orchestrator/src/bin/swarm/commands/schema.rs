//! `swarm schema` (hidden): the JSON schema of plan files, of run events
//! or of a cassette's lines, which the repository's committed schemas are
//! checked against.

use swarm_orchestrator::{exit, plan};

use crate::failure::Failure;

/// `swarm schema`'s command line.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    #[arg(long, conflicts_with = "cassette")]
    events: bool,
    #[arg(long)]
    cassette: bool,
}

/// `swarm schema [--events | --cassette]`.
pub(crate) fn cmd_schema(args: SchemaArgs) -> Result<i32, Failure> {
    if args.events {
        print!("{}", swarm_protocol::events_schema());
    } else if args.cassette {
        print!("{}", swarm_protocol::cassette::cassette_schema());
    } else {
        print!("{}", plan::schema::json_schema());
    }
    Ok(exit::SUCCESS)
}
