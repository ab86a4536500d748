//! What every executor that runs attempts on other machines shares, not
//! only Slurm's: the job's spec a node gets ([`NodeJob`], several of them as one job array's [`NodeBatch`]), how it reaches
//! the coordinator's model gateway ([`GatewayAccess`]), the exit record it
//! pushes back ([`ExitRecord`], `record.rs`), and the node's side of a job
//! (`node.rs`: the attempt run by the local executor there, its work
//! pushed to the shared repository). An engine (`run/slurm/`) only submits,
//! watches and cancels jobs.

pub mod node;
pub mod record;

pub use self::record::{ExitRecord, GatewayAccess, NodeBatch, NodeElement, NodeJob};
