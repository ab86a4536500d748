//! What travels between the coordinator and a job on a node: the job's
//! spec ([`NodeJob`], in the batch script) and its exit record
//! ([`ExitRecord`], a commit in the shared repository whose tree holds
//! `exit.json` and the attempt's logs, and whose parent is the attempt's
//! snapshot, so that one fetch brings both).
//!
//! Refs in the shared repository (task ids hold no `.`, so a component
//! with one is never a task's ref):
//! - `refs/swarm/<run>/base.d/<commit>`: a base an attempt starts from;
//! - `refs/swarm/<run>/<task>.<attempt>`: the attempt's snapshot;
//! - `refs/swarm/<run>/exit.d/<task>.<attempt>`: its exit record.

#![allow(
    clippy::disallowed_methods,
    reason = "a node job's logs as swarm keeps them, swarm's own files"
)]

use std::path::Path;

use git2::Oid;
use serde::{Deserialize, Serialize};
use swarm_protocol::agent::AgentReport;
use swarm_protocol::experiment::{DiffStat, Score};
use swarm_protocol::{AttemptOutcome, SkippedFile, TaskStatus};

use crate::git::{GitError, Repo};

/// The name of the record's JSON in its commit's tree.
const RECORD_FILE: &str = "exit.json";
/// The directory of the attempt's logs in its commit's tree.
const LOGS_DIR: &str = "logs";

/// Everything a node needs to run one attempt. Never holds a secret: the
/// batch script carrying it is stored by the cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeJob {
    pub run: String,
    pub task: String,
    pub attempt: u32,
    /// The shared repository (path or URL).
    pub shared: String,
    /// The commit the attempt starts from, and its ref in `shared`.
    pub base: String,
    pub base_ref: String,
    /// The plan, as the coordinator read it (relative paths in it are
    /// relative to `plan_path`'s directory).
    pub plan_path: String,
    pub plan_text: String,
    /// Whether the attempt runs sandboxed (the run's `sandbox`, after the
    /// command line).
    pub sandbox: bool,
    /// Between SIGTERM and SIGKILL when the attempt is stopped.
    pub grace_ms: u64,
    /// Node-local directory for the clone and worktree (`None`: `$TMPDIR`,
    /// else `/tmp`).
    pub scratch: Option<String>,
    /// Node-local directory of kept setups, shared by the node's jobs
    /// (`None`: `swarm-cache-<uid>` in the scratch directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<String>,
    /// Whether the job's egress proxies reach their hosts through the
    /// coordinator's relay (`[executor] egress = "coordinator"`), at
    /// `gateway`, rather than from the node.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub egress_via_coordinator: bool,
    /// How agent tasks reach the model: the coordinator's gateway.
    pub gateway: Option<GatewayAccess>,
    /// How the run split its sharded tasks (`shards`): each task's id and
    /// its shards' entries, so that the node splits the plan the same way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<(String, Vec<Vec<String>>)>,
    /// For a shard of a task with `affected = true`, which of its entries
    /// run: the coordinator's decision (`plan::selection`), made from the
    /// run's base, which the node's shallow clone does not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<crate::plan::selection::Selection>,
}

/// Several attempts submitted as one job array: what they share once (the
/// plan above all, which would otherwise be stored by the cluster once per
/// job), and per array index what [`NodeJob`] holds of one attempt. The
/// node picks its element by `SLURM_ARRAY_TASK_ID` ([`NodeBatch::job`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeBatch {
    pub run: String,
    pub shared: String,
    pub plan_path: String,
    pub plan_text: String,
    pub sandbox: bool,
    pub grace_ms: u64,
    pub scratch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub egress_via_coordinator: bool,
    pub gateway: Option<GatewayAccess>,
    /// As [`NodeJob::shards`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<(String, Vec<Vec<String>>)>,
    /// The attempts, in order.
    pub elements: Vec<NodeElement>,
    /// How many attempts each array element runs, one after another
    /// (`[executor] tasks_per_job`): element `i` runs the `packs[i]`
    /// attempts after those of the elements before it. Empty: one each
    /// (element `i` is attempt `i`), as batches before packing carried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packs: Vec<u32>,
}

/// One attempt of a [`NodeBatch`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeElement {
    pub task: String,
    pub attempt: u32,
    pub base: String,
    pub base_ref: String,
    /// As [`NodeJob::selection`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<crate::plan::selection::Selection>,
}

impl NodeBatch {
    /// The specs of the attempts array element `index` runs, in order.
    pub fn jobs(&self, index: usize) -> Option<Vec<NodeJob>> {
        if self.packs.is_empty() {
            return self.job(index).map(|job| vec![job]);
        }
        let size = |n: &u32| usize::try_from(*n).unwrap_or(usize::MAX);
        let start: usize = self.packs.get(..index)?.iter().map(size).sum();
        let count = size(self.packs.get(index)?);
        let jobs: Vec<NodeJob> = (start..start.saturating_add(count))
            .map_while(|k| self.job(k))
            .collect();
        (jobs.len() == count && count > 0).then_some(jobs)
    }

    /// The spec of the attempt at index `index` of `elements`.
    pub fn job(&self, index: usize) -> Option<NodeJob> {
        let e = self.elements.get(index)?;
        Some(NodeJob {
            run: self.run.clone(),
            task: e.task.clone(),
            attempt: e.attempt,
            shared: self.shared.clone(),
            base: e.base.clone(),
            base_ref: e.base_ref.clone(),
            selection: e.selection.clone(),
            plan_path: self.plan_path.clone(),
            plan_text: self.plan_text.clone(),
            sandbox: self.sandbox,
            grace_ms: self.grace_ms,
            scratch: self.scratch.clone(),
            cache_dir: self.cache_dir.clone(),
            egress_via_coordinator: self.egress_via_coordinator,
            gateway: self.gateway.clone(),
            shards: self.shards.clone(),
        })
    }
}

pub use crate::run::options::GatewayAccess;

/// How an attempt on a node ended: what the local executor reported there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitRecord {
    pub task: String,
    pub attempt: u32,
    /// The node it ran on.
    pub node: String,
    pub outcome: AttemptOutcome,
    pub verify_passed: Option<bool>,
    pub duration_ms: u64,
    /// The attempt's snapshot (the record commit's parent).
    pub commit: Option<String>,
    #[serde(default)]
    pub changed_files: Vec<String>,
    #[serde(default)]
    pub skipped_files: Vec<SkippedFile>,
    pub snapshot_ms: Option<u64>,
    /// How long its verify took, of `duration_ms`.
    #[serde(default)]
    pub verify_ms: Option<u64>,
    #[serde(default)]
    pub outside_paths: Vec<String>,
    pub agent: Option<AgentReport>,
    pub score: Option<Score>,
    pub diff: Option<DiffStat>,
    /// The task's status had this been its last attempt, and why.
    pub status: TaskStatus,
    pub reason: Option<String>,
    /// Its own test report's counts (`junit`), its cases in the record's
    /// logs (`<attempt>.tests.json`), or why there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<swarm_protocol::TestCounts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests_warning: Option<String>,
    /// Its `[setup]` on the node: run there, or a kept one copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_run: Option<swarm_protocol::SetupRun>,
}

impl ExitRecord {
    /// A failed attempt of `job` that ended as `outcome`, with nothing else
    /// known yet (the node is filled in when the record is pushed).
    pub fn failed(job: &NodeJob, outcome: AttemptOutcome) -> Self {
        Self {
            task: job.task.clone(),
            attempt: job.attempt,
            node: String::new(),
            outcome,
            verify_passed: None,
            duration_ms: 0,
            commit: None,
            changed_files: Vec::new(),
            skipped_files: Vec::new(),
            snapshot_ms: None,
            verify_ms: None,
            outside_paths: Vec::new(),
            agent: None,
            score: None,
            diff: None,
            status: TaskStatus::Failed,
            reason: None,
            tests: None,
            tests_warning: None,
            setup_run: None,
        }
    }
}

/// The shared repository's ref of a base commit.
pub fn base_ref(run: &str, base: Oid) -> String {
    format!("refs/swarm/{run}/base.d/{base}")
}

/// The shared repository's ref of an attempt's snapshot.
pub fn attempt_ref(run: &str, task: &str, attempt: u32) -> String {
    crate::git::refs::attempt(run, task, attempt)
}

/// The ref of an attempt's exit record (the same name in the shared
/// repository and, once fetched, in the coordinator's).
pub fn exit_ref(run: &str, task: &str, attempt: u32) -> String {
    format!("refs/swarm/{run}/exit.d/{task}.{attempt}")
}

/// The refspec that fetches every exit record of `run`.
pub fn exit_refspec(run: &str) -> String {
    format!("+refs/swarm/{run}/exit.d/*:refs/swarm/{run}/exit.d/*")
}

/// Commits `record` (of run `run`) with the files of `logs` (a directory; missing is
/// empty) on top of the snapshot, and returns the commit.
pub fn write_record(
    repo: &Repo,
    run: &str,
    record: &ExitRecord,
    logs: &Path,
) -> Result<Oid, GitError> {
    let git = repo.open()?;
    let what = || {
        format!(
            "write the exit record of {}.{}",
            record.task, record.attempt
        )
    };
    let json = serde_json::to_vec_pretty(record).map_err(|e| GitError::Cli {
        action: what(),
        message: e.to_string(),
    })?;
    let wrap = |e: git2::Error| GitError::Cli {
        action: what(),
        message: e.message().to_string(),
    };
    let mut logs_tree = git.treebuilder(None).map_err(wrap)?;
    if let Ok(entries) = std::fs::read_dir(logs) {
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let blob = git.blob_path(&path).map_err(wrap)?;
            logs_tree.insert(&name, blob, 0o100644).map_err(wrap)?;
        }
    }
    let logs_oid = logs_tree.write().map_err(wrap)?;
    let mut root = git.treebuilder(None).map_err(wrap)?;
    root.insert(RECORD_FILE, git.blob(&json).map_err(wrap)?, 0o100644)
        .map_err(wrap)?;
    root.insert(LOGS_DIR, logs_oid, 0o040000).map_err(wrap)?;
    let tree = git.find_tree(root.write().map_err(wrap)?).map_err(wrap)?;
    let parent = match &record.commit {
        Some(c) => Some(
            Oid::from_str(c)
                .and_then(|oid| git.find_commit(oid))
                .map_err(wrap)?,
        ),
        None => None,
    };
    let sig = crate::git::signature()?;
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    git.commit(
        None,
        &sig,
        &sig,
        &format!(
            "swarm: {run}/{}: exit record of attempt {}",
            record.task, record.attempt
        ),
        &tree,
        &parents,
    )
    .map_err(wrap)
}

/// Reads the exit record at `commit`, writing its logs into `logs` (made
/// if missing). The snapshot it names must be its commit's parent.
pub fn read_record(repo: &Repo, commit: Oid, logs: &Path) -> Result<ExitRecord, GitError> {
    let git = repo.open()?;
    let what = || format!("read the exit record {commit}");
    let wrap = |e: git2::Error| GitError::Cli {
        action: what(),
        message: e.message().to_string(),
    };
    let c = git.find_commit(commit).map_err(wrap)?;
    let tree = c.tree().map_err(wrap)?;
    let entry = tree.get_name(RECORD_FILE).ok_or_else(|| GitError::Cli {
        action: what(),
        message: format!("it has no {RECORD_FILE}"),
    })?;
    let blob = git.find_blob(entry.id()).map_err(wrap)?;
    let record: ExitRecord = serde_json::from_slice(blob.content()).map_err(|e| GitError::Cli {
        action: what(),
        message: e.to_string(),
    })?;
    if let Some(snapshot) = &record.commit
        && c.parent_id(0).ok().map(|p| p.to_string()).as_deref() != Some(snapshot.as_str())
    {
        return Err(GitError::Cli {
            action: what(),
            message: format!("its snapshot {snapshot} is not its parent"),
        });
    }
    if let Some(dir) = tree.get_name(LOGS_DIR) {
        let dir = git.find_tree(dir.id()).map_err(wrap)?;
        std::fs::create_dir_all(logs).map_err(|source| GitError::Io {
            action: format!("create {}", logs.display()),
            source,
        })?;
        for entry in dir.iter() {
            // One plain file name each: a record cannot write elsewhere.
            let Some(name) = entry.name().ok().filter(|n| is_plain_name(n)) else {
                continue;
            };
            let Ok(blob) = git.find_blob(entry.id()) else {
                continue;
            };
            let path = logs.join(name);
            std::fs::write(&path, blob.content()).map_err(|source| GitError::Io {
                action: format!("write {}", path.display()),
                source,
            })?;
        }
    }
    Ok(record)
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_with_its_logs_and_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let git = git2::Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let tree = git
            .find_tree(git.treebuilder(None).unwrap().write().unwrap())
            .unwrap();
        let snap = git.commit(None, &sig, &sig, "snap", &tree, &[]).unwrap();
        let repo = Repo::discover(dir.path()).unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join("1.out"), "hello\n").unwrap();
        let record = ExitRecord {
            task: "t".into(),
            attempt: 1,
            node: "n2".into(),
            outcome: AttemptOutcome::Exited { code: 3 },
            verify_passed: None,
            duration_ms: 12,
            commit: Some(snap.to_string()),
            changed_files: vec!["a".into()],
            skipped_files: Vec::new(),
            snapshot_ms: Some(1),
            verify_ms: None,
            outside_paths: Vec::new(),
            agent: None,
            score: None,
            diff: None,
            status: TaskStatus::Failed,
            reason: Some("exited with code 3".into()),
            tests: None,
            tests_warning: None,
            setup_run: Some(swarm_protocol::SetupRun {
                ms: 40,
                reused: true,
                waited_ms: 0,
                layered: false,
            }),
        };
        let commit = write_record(&repo, "r", &record, &logs).unwrap();
        assert_eq!(git.find_commit(commit).unwrap().parent_id(0).unwrap(), snap);
        let back = dir.path().join("back");
        let read = read_record(&repo, commit, &back).unwrap();
        assert_eq!(read.node, "n2");
        assert_eq!(read.setup_run, record.setup_run);
        assert_eq!(read.outcome, AttemptOutcome::Exited { code: 3 });
        assert_eq!(
            std::fs::read_to_string(back.join("1.out")).unwrap(),
            "hello\n"
        );
        // A record whose snapshot is not its parent is refused.
        let lie = ExitRecord {
            commit: Some(commit.to_string()),
            ..record
        };
        let bad = write_record(
            &repo,
            "r",
            &ExitRecord {
                commit: None,
                ..lie.clone()
            },
            &logs,
        )
        .unwrap();
        let c = git.find_commit(bad).unwrap();
        let forged = git
            .commit(None, &sig, &sig, "x", &c.tree().unwrap(), &[])
            .unwrap();
        assert!(read_record(&repo, forged, &back).is_ok());
        let json = serde_json::to_vec(&lie).unwrap();
        let mut root = git.treebuilder(None).unwrap();
        root.insert(RECORD_FILE, git.blob(&json).unwrap(), 0o100644)
            .unwrap();
        let t = git.find_tree(root.write().unwrap()).unwrap();
        let orphan = git.commit(None, &sig, &sig, "x", &t, &[]).unwrap();
        assert!(read_record(&repo, orphan, &back).is_err());
    }
}
