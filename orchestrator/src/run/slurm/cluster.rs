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

/// Submits a batch job: `args` for sbatch, `script` on its stdin, and
/// `env` sbatch's whole environment (nothing of this process's: with
/// `--export=ALL` it becomes the job's). Returns the job id.
pub fn submit(
    args: &[String],
    env: &[(String, String)],
    script: &str,
) -> Result<String, ClusterError> {
    let command = "sbatch --parsable".to_string();
    let mut child = Command::new("sbatch")
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
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

/// Stops jobs `ids` (one `scancel` for all): `batch_only` signals only
/// their batch scripts (the swarm worker, which then stops the task
/// itself, keeps its work and reports) with SIGTERM; otherwise Slurm stops
/// everything of the jobs (SIGTERM, then SIGKILL after the cluster's
/// KillWait).
pub fn cancel(ids: &[String], batch_only: bool) -> Result<(), ClusterError> {
    let mut cmd = Command::new("scancel");
    if batch_only {
        cmd.args(["--batch", "--signal=TERM"]);
    }
    cmd.args(ids);
    let id = ids.join(" ");
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
/// The most elements a job array of the cluster may have: its
/// `MaxArraySize` (array indices run from 0 to one less), as `scontrol show
/// config` says; Slurm's default, 1001, where it does not say.
pub fn max_array_size() -> usize {
    let shown = Command::new("scontrol")
        .args(["show", "config"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match shown {
        Ok(out) if out.status.success() => {
            parse_max_array_size(&String::from_utf8_lossy(&out.stdout))
                .unwrap_or(DEFAULT_MAX_ARRAY_SIZE)
        }
        _ => DEFAULT_MAX_ARRAY_SIZE,
    }
}

/// Slurm's default `MaxArraySize`.
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1001;

/// `MaxArraySize` of `scontrol show config`'s text (`MaxArraySize =
/// 1001`), at least 1.
fn parse_max_array_size(config: &str) -> Option<usize> {
    config.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "MaxArraySize")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
            .map(|n| n.max(1))
    })
}

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

/// The state of the elements of job arrays `arrays` (and of jobs with
/// those ids) the cluster still lists, by id: `squeue` asked for those
/// only, in its text format. `squeue --json` lists every job of the
/// cluster whatever it is asked (Slurm 22.05 ignores the filters with
/// `--json`): with a few thousand jobs kept for `MinJobAge`, that was
/// 9 MB and 0.4 s a poll, five polls a second.
pub fn queue_of(arrays: &[String]) -> Result<HashMap<String, JobState>, ClusterError> {
    if arrays.is_empty() {
        return Ok(HashMap::new());
    }
    let format = "%i|%T|%B|%N|%r";
    let list = arrays.join(",");
    let command =
        format!("squeue --noheader --array --states=all --jobs={list} --format='{format}'");
    let out = Command::new("squeue")
        .args(["--noheader", "--array", "--states=all"])
        .arg(format!("--jobs={list}"))
        .arg(format!("--format={format}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ClusterError::Spawn {
            command: command.clone(),
            source,
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Asked only for jobs it no longer knows, `squeue` fails so: none is
    // listed.
    if !out.status.success() && !stderr.contains("Invalid job id") {
        return Err(ClusterError::Refused {
            action: "list the run's jobs".into(),
            command,
            message: stderr.trim().to_string(),
        });
    }
    Ok(parse_text_queue(&String::from_utf8_lossy(&out.stdout)))
}

/// Reads `squeue --array --format='%i|%T|%B|%N|%r'` output: an element of
/// an array is `ARRAY_INDEX`, each on a line of its own.
pub fn parse_text_queue(text: &str) -> HashMap<String, JobState> {
    let shown = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && !matches!(s, "None" | "(null)" | "n/a")).then(|| s.to_string())
    };
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split('|');
            let id = fields.next()?.trim();
            let state = fields.next()?.trim();
            if id.is_empty() || state.is_empty() {
                return None;
            }
            let batch_host = fields.next().and_then(shown);
            let nodes = fields.next().and_then(shown);
            let reason = fields.next().and_then(shown);
            Some((
                id.to_string(),
                JobState {
                    state: state.to_string(),
                    node: batch_host.or(nodes),
                    reason,
                },
            ))
        })
        .collect()
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
    /// An array element's array, and its index (0 and none for a job
    /// that is no array element).
    #[serde(default)]
    array_job_id: serde_json::Value,
    #[serde(default)]
    array_task_id: serde_json::Value,
    /// The indices of the elements still pending as one record, the
    /// array's own (`3-9`, `1,4-6%2`).
    #[serde(default)]
    array_task_string: Option<String>,
    /// A string up to Slurm 23.02, a list of strings after.
    job_state: serde_json::Value,
    #[serde(default)]
    batch_host: Option<String>,
    #[serde(default)]
    nodes: Option<String>,
    #[serde(default)]
    state_reason: Option<String>,
}

/// Reads `squeue --json` output. An array element is listed as
/// `ARRAY_INDEX` (how swarm names its jobs), and the elements Slurm still
/// keeps pending as one record each get that record's state.
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
    let mut jobs = HashMap::new();
    for j in queue.jobs {
        let (Some(id), Some(state)) = (text(&j.job_id), text(&j.job_state)) else {
            continue;
        };
        let node = nonempty(j.batch_host).or_else(|| nonempty(j.nodes));
        let job = JobState {
            state,
            node,
            reason: nonempty(j.state_reason),
        };
        let array = text(&j.array_job_id).filter(|a| a != "0");
        let Some(array) = array else {
            jobs.insert(id, job);
            continue;
        };
        // Slurm 24 writes a missing index as {"set": false, ...}.
        let set = !matches!(&j.array_task_id, serde_json::Value::Object(o) if o.get("set") == Some(&serde_json::Value::Bool(false)));
        match text(&j.array_task_id).filter(|_| set) {
            Some(index) => {
                jobs.insert(format!("{array}_{index}"), job);
            }
            None => {
                for index in indices(j.array_task_string.as_deref().unwrap_or_default()) {
                    jobs.insert(format!("{array}_{index}"), job.clone());
                }
            }
        }
    }
    Ok(jobs)
}

/// The indices an array's task string names: `0-9`, `1,3,5-7`, `0-8:2`,
/// with a `%N` throttle after; what it cannot read names none.
fn indices(spec: &str) -> Vec<u64> {
    let spec = spec.split('%').next().unwrap_or_default();
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (range, step) = match part.split_once(':') {
            Some((r, s)) => (r, s.parse::<u64>().ok().filter(|&s| s > 0)),
            None => (part, Some(1)),
        };
        let Some(step) = step else { continue };
        let (first, last) = match range.split_once('-') {
            Some((a, b)) => (a.parse::<u64>(), b.parse::<u64>()),
            None => (range.parse::<u64>(), range.parse::<u64>()),
        };
        if let (Ok(first), Ok(last)) = (first, last) {
            // Slurm's MaxArraySize is at most 4,000,001.
            out.extend(
                (first..=last.min(first.saturating_add(4_000_000)))
                    .step_by(usize::try_from(step).unwrap_or(1)),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn max_array_size_is_read_from_scontrols_config() {
        let text = "Configuration data as of 2026-11-29T12:00:00\nMailProg                = /bin/mail\nMaxArraySize            = 4\nMaxJobCount             = 10000\n";
        assert_eq!(parse_max_array_size(text), Some(4));
        assert_eq!(parse_max_array_size("MaxArraySize = 0\n"), Some(1));
        assert_eq!(parse_max_array_size("MaxJobCount = 5\n"), None);
    }

    use super::*;

    #[test]
    fn reads_the_text_queue() {
        let jobs = parse_text_queue(
            "6400_28|COMPLETED|n1|n1|None\n6400_29|RUNNING|n3|n3|None\n\
             6401_0|PENDING|(null)||Priority\n77|NODE_FAIL|n2|n2|NodeDown\n\ngarbage\n",
        );
        assert_eq!(jobs.len(), 4, "{jobs:?}");
        assert_eq!(
            jobs["6400_29"],
            JobState {
                state: "RUNNING".into(),
                node: Some("n3".into()),
                reason: None
            }
        );
        assert_eq!(jobs["6401_0"].node, None);
        assert_eq!(jobs["6401_0"].reason.as_deref(), Some("Priority"));
        assert!(jobs["77"].ended() && jobs["6400_28"].ended());
        assert!(!jobs["6400_29"].ended());
    }

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

    #[test]
    fn array_elements_are_named_array_index() {
        // As Slurm 22.05 lists an array of 21 whose first 12 run: the last
        // element keeps the array's own id, the pending rest is one record.
        let json = br#"{"jobs":[
            {"job_id":2,"array_job_id":1,"array_task_id":0,"array_task_string":"","job_state":"RUNNING","batch_host":"n1"},
            {"job_id":13,"array_job_id":1,"array_task_id":11,"array_task_string":"","job_state":"COMPLETED","batch_host":"n3"},
            {"job_id":1,"array_job_id":1,"array_task_id":null,"array_task_string":"12-14,16,18-22:2%4","job_state":"PENDING","batch_host":""},
            {"job_id":40,"array_job_id":0,"array_task_id":null,"job_state":"RUNNING","batch_host":"n2"}
        ]}"#;
        let q = parse_queue(json).unwrap();
        assert_eq!(q["1_0"].state, "RUNNING");
        assert_eq!(q["1_0"].node.as_deref(), Some("n1"));
        assert!(q["1_11"].ended());
        for pending in ["1_12", "1_13", "1_14", "1_16", "1_18", "1_20", "1_22"] {
            assert_eq!(q[pending].state, "PENDING", "{pending}");
        }
        assert!(!q.contains_key("1_15") && !q.contains_key("1_19"));
        // A job that is no array element keeps its plain id.
        assert_eq!(q["40"].state, "RUNNING");
        assert!(!q.contains_key("2") && !q.contains_key("1"));
        assert_eq!(q.len(), 10);
    }
}
