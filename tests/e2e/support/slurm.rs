//! A real Slurm cluster for tests: one controller and three nodes
//! (`n1`..`n3`) on this machine, every file in a temporary directory,
//! started and stopped by `tests/slurm/cluster.sh` (Debian's slurmctld,
//! slurmd and munge, installed by `.ci/run`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use tempfile::TempDir;

/// A running cluster; dropping it stops every daemon and job of it.
pub struct Cluster {
    dir: TempDir,
    /// One cluster at a time: four daemons and their jobs on two cores
    /// beside the other tests would slow those that measure parallelism.
    _turn: MutexGuard<'static, ()>,
}

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/slurm/cluster.sh")
}

impl Cluster {
    /// Starts a cluster and waits until its three nodes are idle.
    pub fn start() -> Self {
        Self::start_with_max_array_size(1001)
    }

    /// [`Cluster::start`] with its job arrays at most `max` elements
    /// (`MaxArraySize`; Slurm's default is 1001).
    pub fn start_with_max_array_size(max: usize) -> Self {
        // A test that failed holding the turn poisoned nothing of ours.
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::Builder::new()
            .prefix("swarm-slurm-")
            .tempdir_in(super::temp_root())
            .expect("tempdir");
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .env("SWARM_TEST_MAX_ARRAY_SIZE", max.to_string())
            .output()
            .expect("run tests/slurm/cluster.sh (bash)");
        assert!(
            out.status.success(),
            "the test cluster did not start (.ci/run installs slurmctld, slurmd and munge)\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir, _turn: turn }
    }

    /// Where everything of the cluster is (configuration, state, spools).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The cluster's configuration: `SLURM_CONF` for its client commands.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// A Slurm client command talking to this cluster.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", self.conf());
        cmd
    }

    /// `squeue --json`'s jobs.
    pub fn jobs(&self) -> Vec<serde_json::Value> {
        let out = self
            .command("squeue")
            .arg("--json")
            .output()
            .expect("squeue");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["jobs"].as_array().cloned().unwrap_or_default()
    }

    /// The state Slurm gives job `id` (`None` once it forgot it): a job
    /// array's element is `ARRAY_INDEX`, as swarm names it.
    pub fn job_state(&self, id: &str) -> Option<String> {
        let name = |j: &serde_json::Value| {
            let array = j["array_job_id"].as_u64().filter(|&a| a != 0);
            match (array, j["array_task_id"].as_u64()) {
                (Some(a), Some(i)) => Some(format!("{a}_{i}")),
                // The elements still pending, as one record.
                (Some(a), None) => Some(format!("{a}_pending")),
                _ => j["job_id"].as_u64().map(|n| n.to_string()),
            }
        };
        let pending = id.split_once('_').map(|(a, _)| format!("{a}_pending"));
        self.jobs()
            .into_iter()
            .find(|j| name(j).is_some_and(|n| n == id || Some(&n) == pending.as_ref()))
            .map(|j| match &j["job_state"] {
                serde_json::Value::Array(a) => a[0].as_str().unwrap_or_default().to_string(),
                s => s.as_str().unwrap_or_default().to_string(),
            })
    }

    /// Kills node `node` as a power cut would: its slurmd and everything
    /// running on it.
    pub fn kill_node(&self, node: &str) {
        let out = Command::new(script())
            .arg("kill-node")
            .arg(self.dir.path())
            .arg(node)
            .output()
            .expect("run cluster.sh kill-node");
        assert!(
            out.status.success(),
            "kill-node {node}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}
