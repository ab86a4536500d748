//! Slurm's own commands, as the coordinator uses them: `sbatch` to submit
//! a job (its script on stdin), `scancel` to stop one, `squeue --json` to
//! see how they are. Nothing here knows about tasks.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use serde::Deserialize;

/// Failure to talk to the cluster, as a fragment after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("run `{command}`: {source} (is Slurm's client installed and on PATH?)")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{action}: `{command}` said: {message}")]
    Refused {
        action: String,
        command: String,
        message: String,
    },
    #[error("read what `squeue --json` printed: {0}")]
    Json(#[from] serde_json::Error),
}

/// How a job is, as far as the cluster says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    /// Slurm's state name: `PENDING`, `RUNNING`, `COMPLETED`, `NODE_FAIL`...
    pub state: String,
    /// The node its batch script runs on, once it started.
    pub node: Option<String>,
    /// Why it waits or ended, when Slurm says.
    pub reason: Option<String>,
}

impl JobState {
    /// Whether the job ended (it runs nothing any more).
    pub fn ended(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED"
                | "CANCELLED"
                | "FAILED"
                | "TIMEOUT"
                | "NODE_FAIL"
                | "PREEMPTED"
                | "BOOT_FAIL"
                | "DEADLINE"
                | "OUT_OF_MEMORY"
                | "REVOKED"
                | "SPECIAL_EXIT"
        )
    }

    pub fn running(&self) -> bool {
        matches!(
            self.state.as_str(),
            "RUNNING" | "COMPLETING" | "SUSPENDED" | "STOPPED" | "SIGNALING" | "STAGE_OUT"
        )
    }
}

/// Submits a batch job: `args` for sbatch, `script` on its stdin. Returns
/// the job id.
pub fn submit(args: &[String], script: &str) -> Result<String, ClusterError> {
    let command = "sbatch --parsable".to_string();
    let mut child = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ClusterError::Spawn {
            command: command.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A broken pipe shows as sbatch's own error below.
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|source| ClusterError::Spawn {
            command: command.clone(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // `--parsable` prints `id` or `id;cluster`.
    let id = stdout
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    if !out.status.success() || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ClusterError::Refused {
            action: "submit the job".into(),
            command,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(id)
}

/// Stops job `id`: `batch_only` signals only its batch script (the swarm
/// worker, which then stops the task itself, keeps its work and reports)
/// with SIGTERM; otherwise Slurm stops everything of the job (SIGTERM,
/// then SIGKILL after the cluster's KillWait).
pub fn cancel(id: &str, batch_only: bool) -> Result<(), ClusterError> {
    let mut cmd = Command::new("scancel");
    if batch_only {
        cmd.args(["--batch", "--signal=TERM"]);
    }
    cmd.arg(id);
    let command = format!("scancel {id}");
    let out = cmd.output().map_err(|source| ClusterError::Spawn {
        command: command.clone(),
        source,
    })?;
    let message = String::from_utf8_lossy(&out.stderr).trim().to_string();
    // A job that ended meanwhile needs no stopping (scancel then fails,
    // often saying nothing).
    let ended = message.is_empty()
        || message.contains("already completing or completed")
        || message.contains("Invalid job id");
    if !out.status.success() && !ended {
        return Err(ClusterError::Refused {
            action: format!("stop job {id}"),
            command,
            message,
        });
    }
    Ok(())
}

/// Whether the cluster answers `squeue` within `timeout`: why not, in one
/// line, if it does not.
pub fn reachable(timeout: std::time::Duration) -> Result<(), String> {
    let mut child = Command::new("squeue")
        .arg("--noheader")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run `squeue`: {e} (is Slurm's client installed and on PATH?)"))?;
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`squeue` did not answer within {}",
                    humantime::format_duration(timeout)
                ));
            }
            Err(e) => return Err(format!("wait for `squeue`: {e}")),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
    }
    let first = err
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message");
    Err(format!("`squeue` said: {}", first.trim()))
}

/// The state of every job the cluster still lists, by id.
pub fn queue() -> Result<HashMap<String, JobState>, ClusterError> {
    let command = "squeue --json".to_string();
    let out = Command::new("squeue")
        .arg("--json")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ClusterError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(ClusterError::Refused {
            action: "list the cluster's jobs".into(),
            command,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    parse_queue(&out.stdout)
}

#[derive(Deserialize)]
struct Queue {
    #[serde(default)]
    jobs: Vec<QueuedJob>,
}

#[derive(Deserialize)]
struct QueuedJob {
    job_id: serde_json::Value,
    /// A string up to Slurm 23.02, a list of strings after.
    job_state: serde_json::Value,
    #[serde(default)]
    batch_host: Option<String>,
    #[serde(default)]
    nodes: Option<String>,
    #[serde(default)]
    state_reason: Option<String>,
}

/// Reads `squeue --json` output.
pub fn parse_queue(json: &[u8]) -> Result<HashMap<String, JobState>, ClusterError> {
    let queue: Queue = serde_json::from_slice(json)?;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Array(a) => a.first().and_then(|s| s.as_str()).map(str::to_string),
        // Slurm 24's numbers are objects: {"set": true, "number": 12}.
        serde_json::Value::Object(o) => o.get("number").map(|n| n.to_string()),
        _ => None,
    };
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty() && s != "None");
    Ok(queue
        .jobs
        .into_iter()
        .filter_map(|j| {
            let id = text(&j.job_id)?;
            let state = text(&j.job_state)?;
            let node = nonempty(j.batch_host).or_else(|| nonempty(j.nodes));
            Some((
                id,
                JobState {
                    state,
                    node,
                    reason: nonempty(j.state_reason),
                },
            ))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_state_shapes() {
        let json = br#"{"meta":{},"errors":[],"jobs":[
            {"job_id":12,"job_state":"RUNNING","batch_host":"n2","nodes":"n2","state_reason":"None","name":"x"},
            {"job_id":13,"job_state":["PENDING"],"batch_host":"","nodes":"","state_reason":"Resources"},
            {"job_id":{"set":true,"number":14},"job_state":["NODE_FAIL"],"nodes":"n1"}
        ]}"#;
        let q = parse_queue(json).unwrap();
        assert_eq!(q["12"].state, "RUNNING");
        assert_eq!(q["12"].node.as_deref(), Some("n2"));
        assert!(q["12"].running() && !q["12"].ended());
        assert_eq!(q["13"].node, None);
        assert_eq!(q["13"].reason.as_deref(), Some("Resources"));
        assert!(q["14"].ended());
        assert_eq!(q["14"].node.as_deref(), Some("n1"));
    }
}
