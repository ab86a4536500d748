//! End-to-end tests: the real `swarm` binary on real temporary git
//! repositories. One test binary (modules below) keeps link time down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent;
mod agent_cli;
mod bad_input;
mod bench_scripts;
mod clean;
mod confinement;
mod escapes;
mod everyday_tools;
mod example_plans;
mod experiments;
mod faults;
mod gateway_complete;
mod hostile_task;
mod launcher;
mod live;
mod looking;
mod mcp;
mod mcp_tools;
mod model_mock;
mod outputs;
mod ownership;
mod papercuts;
mod plan_features;
mod planner;
mod replan;
mod replay;
mod resume;
mod run;
mod run_management;
mod run_verify;
mod sandbox;
mod sandbox_escapes;
mod sandbox_limits;
mod slurm;
mod snapshot_limits;
mod state;
mod subtasks;
mod support;
mod toolchains;
mod trust;
mod wasm;
mod wasm_guests;
mod worktrees;
