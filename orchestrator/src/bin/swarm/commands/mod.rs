//! One file per command of `swarm`, each with its clap arguments beside
//! the code that runs them. What several commands share is in the
//! binary's top-level modules (`common`, `drive`, `planning`,
//! `config_origin`, `received`, `output`, `host`), which import no
//! command.

pub mod agent;
pub mod clean;
pub mod compare;
pub mod completions;
pub mod doctor;
pub mod graph;
pub mod land;
pub mod logs;
pub mod mcp;
pub mod node;
pub mod plan;
pub mod report;
pub mod resolve;
pub mod resume;
pub mod run;
pub mod runs;
pub mod sandbox;
pub mod schema;
pub mod status;
pub mod trace;
pub mod trust;
pub mod validate;
