//! Turning a ready attempt into a Slurm job: its base pushed to the shared
//! repository, its batch script (the node job's spec inside, no secret in
//! it), its `sbatch` arguments.

use crate::ids::TaskIndex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use git2::Oid;

use super::cluster;
use crate::git::{GitError, Repo, merge_results, run_git};
use crate::plan::{SlurmConfig, Task};
use crate::run::remote::record::{GatewayAccess, NodeBatch, NodeElement, base_ref};

/// What every job of a run shares.
#[derive(Debug)]
pub(super) struct Jobs {
    pub repo: Repo,
    /// The run's base: what a shard's start is compared with for
    /// `affected = true`.
    pub run_base: Oid,
    pub run: String,
    pub run_dir: PathBuf,
    pub tasks: crate::run::table::TaskTable,
    pub config: SlurmConfig,
    /// The shared repository, as nodes and this machine reach it.
    pub shared: String,
    /// The `swarm` binary on the nodes.
    pub swarm: PathBuf,
    /// The variables a job's script sets (none secret).
    pub env: Vec<(String, String)>,
    /// sbatch's whole environment, which is its jobs' (none secret).
    pub submit_env: Vec<(String, String)>,
    pub plan_path: String,
    pub plan_text: String,
    pub sandbox: bool,
    pub grace: Duration,
    pub gateway: Option<GatewayAccess>,
    /// How the run split its sharded tasks, for the nodes to split the
    /// plan alike.
    pub shards: Vec<(String, Vec<Vec<String>>)>,
    /// The most elements a job array may have (the cluster's
    /// `MaxArraySize`): a larger batch is submitted in chunks.
    pub max_array: usize,
    /// The plan's `[[quarantine]]`, applied to the tests the records bring.
    pub quarantine: Arc<[crate::plan::quarantine::Quarantine]>,
    /// Bases in (or on their way to) the shared repository: each pushed
    /// once, by the first job that needs it, while jobs on other bases go on.
    pub pushed: Mutex<HashMap<Oid, Arc<Mutex<bool>>>>,
    /// How long tasks took in earlier runs: a task expected to take
    /// `pack_under` or longer gets a job of its own.
    pub history: crate::durations::History,
}

/// Why an attempt could not be submitted.
#[derive(Debug)]
pub(super) enum NotSubmitted {
    /// Its dependencies' results conflict: the task is blocked.
    Conflict(Vec<String>),
    Failed(String),
}

impl Jobs {
    /// The commit a task starts from: its one dependency's result, or the
    /// merge of several (made here, as the local executor does).
    pub fn base_of(&self, task: TaskIndex, base: Oid, deps: &[Oid]) -> Result<Oid, NotSubmitted> {
        match deps {
            [] => Ok(base),
            [only] => Ok(*only),
            _ => {
                let message = format!(
                    "swarm: {}/{}: merge of its dependencies",
                    self.run,
                    self.tasks.get(task).id
                );
                match merge_results(&self.repo, &self.run, deps, &message) {
                    Ok(Ok(merged)) => Ok(merged),
                    Ok(Err(files)) => Err(NotSubmitted::Conflict(files)),
                    Err(e) => Err(NotSubmitted::Failed(format!("failed to {e}"))),
                }
            }
        }
    }

    /// Which entries shard `task` runs from `start` when its task has
    /// `affected = true` and the run's changes leave some out
    /// (`plan::selection`); `None`: all of them (also when the changes
    /// cannot be read: nothing is skipped on a guess).
    fn selection(&self, task: TaskIndex, start: Oid) -> Option<crate::plan::selection::Selection> {
        let task = self.tasks.get(task);
        let Some(crate::plan::shards::Sharding::Shard {
            entries,
            affected: Some(all),
            ..
        }) = task.sharding.as_deref()
        else {
            return None;
        };
        let changed = self.repo.changed_between(self.run_base, start);
        crate::plan::selection::select_read(&task.id, (entries, all), changed)
    }

    /// Makes `base` fetchable from the shared repository (once per commit).
    pub fn push_base(&self, base: Oid) -> Result<(), GitError> {
        let cell = match self.pushed.lock() {
            Ok(mut map) => Arc::clone(map.entry(base).or_default()),
            Err(_) => Arc::new(Mutex::new(false)),
        };
        // Two pushes of one new ref at once: the second fails to lock it.
        let Ok(mut done) = cell.lock() else {
            return Ok(());
        };
        if *done {
            return Ok(());
        }
        let mut push = self.repo.git(&self.repo.workdir);
        push.args(["push", "-q", &self.shared])
            .arg(format!("+{base}:{}", base_ref(&self.run, base)));
        run_git(push, || {
            format!(
                "push the base {base} to the shared repository {}",
                self.shared
            )
        })?;
        *done = true;
        Ok(())
    }

    /// Submits `attempts` (task, attempt, base already pushed), as few
    /// job arrays as their `sbatch` arguments allow: one per set of
    /// attempts whose arguments agree, at most `max_array` elements each,
    /// an element running one attempt or, with `tasks_per_job`, several
    /// one after another (see [`Self::packs`]). Returns, in the order
    /// given, each attempt's job id (`ARRAY_INDEX`, shared by the attempts
    /// of one element) or why it was not submitted.
    pub fn submit_batch(&self, attempts: &[(TaskIndex, u32, Oid)]) -> Vec<Result<String, String>> {
        let mut ids: Vec<Result<String, String>> =
            vec![Err("never submitted".to_string()); attempts.len()];
        // Attempts by their arguments, in the order given.
        let mut groups: Vec<(Vec<String>, Vec<usize>)> = Vec::new();
        for (k, &(task, _, _)) in attempts.iter().enumerate() {
            let args = self.args(&self.tasks.get(task));
            match groups.iter_mut().find(|(a, _)| *a == args) {
                Some((_, members)) => members.push(k),
                None => groups.push((args, vec![k])),
            }
        }
        for (args, members) in groups {
            let tasks: Vec<TaskIndex> = members.iter().map(|&k| attempts[k].0).collect();
            let packs: Vec<Vec<usize>> = self
                .packs(&tasks)
                .into_iter()
                .map(|pack| pack.into_iter().map(|i| members[i]).collect())
                .collect();
            // The cluster's `MaxArraySize` bounds an array's elements.
            for chunk in packs.chunks(self.max_array.max(1)) {
                let elements: Vec<NodeElement> = chunk
                    .iter()
                    .flatten()
                    .map(|&k| {
                        let (task, attempt, base) = attempts[k];
                        NodeElement {
                            task: self.tasks.get(task).id.clone(),
                            attempt,
                            base: base.to_string(),
                            base_ref: base_ref(&self.run, base),
                            selection: self.selection(task, base),
                        }
                    })
                    .collect();
                // A lone attempt keeps its task's name in `squeue`.
                let name = match elements.as_slice() {
                    [one] => job_name(&self.run, &one.task, one.attempt),
                    _ => format!("swarm-{}", self.run),
                };
                let sizes: Vec<usize> = chunk.iter().map(Vec::len).collect();
                let result = self.submit_array(&args, &name, elements, &sizes);
                for (index, pack) in chunk.iter().enumerate() {
                    for &k in pack {
                        ids[k] = match &result {
                            Ok(array) => Ok(format!("{array}_{index}")),
                            Err(e) => Err(e.clone()),
                        };
                    }
                }
            }
        }
        ids
    }

    /// `tasks` (of one set of `sbatch` arguments) in the groups that share
    /// a job (see [`packs`]), as positions in `tasks`.
    fn packs(&self, tasks: &[TaskIndex]) -> Vec<Vec<usize>> {
        let expected: Vec<Option<u64>> = match self.config.tasks_per_job {
            1 => vec![None; tasks.len()],
            _ => tasks
                .iter()
                .map(|&t| self.history.estimate(&self.tasks.get(t)))
                .collect(),
        };
        packs(
            self.config.tasks_per_job,
            &expected,
            crate::millis(self.config.pack_under),
        )
    }

    /// One `sbatch --array` of `elements`, run `sizes` at a time (one
    /// array element each); the array's id.
    fn submit_array(
        &self,
        args: &[String],
        name: &str,
        elements: Vec<NodeElement>,
        sizes: &[usize],
    ) -> Result<String, String> {
        let last = sizes.len().saturating_sub(1);
        let most = sizes.iter().copied().max().unwrap_or(1);
        let batch = NodeBatch {
            run: self.run.clone(),
            shared: self.shared.clone(),
            plan_path: self.plan_path.clone(),
            plan_text: self.plan_text.clone(),
            sandbox: self.sandbox,
            grace_ms: crate::millis(self.grace),
            scratch: self.config.scratch.clone(),
            cache_dir: self.config.cache_dir.clone(),
            egress_via_coordinator: self.config.egress == crate::plan::Egress::Coordinator,
            gateway: self.gateway.clone(),
            shards: self.shards.clone(),
            elements,
            packs: match most {
                1 => Vec::new(),
                _ => sizes
                    .iter()
                    .map(|&n| u32::try_from(n).unwrap_or(u32::MAX))
                    .collect(),
            },
        };
        let script = script(&self.swarm, &self.env, &batch).map_err(|e| e.to_string())?;
        let mut args = args.to_vec();
        // The time limit swarm derives from a task's timeout is one
        // attempt's: an element runs up to `most` of them. A time limit the
        // plan sets is the job's, as written.
        if self.config.time_limit.is_none() && most > 1 {
            for arg in &mut args {
                if let Some(minutes) = arg
                    .strip_prefix("--time=")
                    .and_then(|m| m.parse::<u64>().ok())
                {
                    *arg = format!("--time={}", minutes.saturating_mul(most as u64));
                }
            }
        }
        args.push(format!("--job-name={name}"));
        args.push(format!("--array=0-{last}"));
        cluster::submit(&args, &self.submit_env, &script).map_err(|e| format!("failed to {e}"))
    }

    /// sbatch's arguments for `task`'s jobs (its name and array aside).
    fn args(&self, task: &Task) -> Vec<String> {
        let c = &self.config;
        let mut args = vec![
            // The job's environment is sbatch's own, which `cluster::submit`
            // builds from nothing (`submit_env`): the coordinator's, which
            // holds API keys, never reaches it. `--export=NONE` would keep
            // it out too, but makes slurmd build a login environment with
            // `su -` before every job (0.1 to 1.4 s each, measured).
            "--export=ALL".to_string(),
            // A failed node is swarm's to retry, as a new attempt.
            "--no-requeue".to_string(),
            format!("--output={}", output_pattern()),
            "--chdir=/tmp".to_string(),
        ];
        let mut flag = |name: &str, value: &Option<String>| {
            if let Some(v) = value {
                args.push(format!("--{name}={v}"));
            }
        };
        flag("partition", &c.partition);
        flag("account", &c.account);
        flag("qos", &c.qos);
        let time = c.time_limit.clone().or_else(|| {
            // The worker stops the task at its timeout; Slurm's limit is
            // the backstop, a minute later.
            task.timeout.map(|t| {
                let secs = (t + self.grace).as_secs() + 60;
                secs.div_ceil(60).to_string()
            })
        });
        flag("time", &time);
        flag("cpus-per-task", &c.cpus_per_task.map(|n| n.to_string()));
        let mem = c
            .mem
            .clone()
            .or_else(|| task.memory.map(|b| format!("{}M", b.div_ceil(1 << 20))));
        flag("mem", &mem);
        args.extend(c.extra_args.iter().cloned());
        args
    }
}

/// Tasks whose expected durations (milliseconds, from earlier runs) are
/// `expected`, in the groups that share a job, as positions: runs of at
/// most `most` in the order given, but a task expected to take `long` or
/// longer alone. A task that never ran is packed: whoever set
/// `tasks_per_job` said these tasks are short.
fn packs(most: usize, expected: &[Option<u64>], long: u64) -> Vec<Vec<usize>> {
    let most = most.max(1);
    let mut packs = Vec::new();
    let mut open = Vec::new();
    for (i, ms) in expected.iter().enumerate() {
        if most == 1 || ms.is_some_and(|ms| ms >= long) {
            packs.push(vec![i]);
            continue;
        }
        open.push(i);
        if open.len() == most {
            packs.push(std::mem::take(&mut open));
        }
    }
    if !open.is_empty() {
        packs.push(open);
    }
    packs
}

/// `swarm-<run>-<task>-<attempt>`: how `squeue` shows a job.
pub(super) fn job_name(run: &str, task: &str, attempt: u32) -> String {
    format!("swarm-{run}-{task}-{attempt}")
}

/// Where Slurm writes what a job's script itself prints (the worker's
/// own diagnostics): on the node, by job id.
pub(super) fn output_pattern() -> &'static str {
    // Every job is an array element, whose id is `ARRAY_INDEX`.
    "/tmp/swarm-job-%A_%a.out"
}

/// The file `output_pattern` names for job `id`.
pub(super) fn output_of(id: &str) -> String {
    format!("/tmp/swarm-job-{id}.out")
}

/// The batch script: the variables, then the worker with the array's spec
/// on its stdin (a quoted here-document: nothing in it is expanded); the
/// worker picks its element by `SLURM_ARRAY_TASK_ID`.
pub(super) fn script(
    swarm: &Path,
    env: &[(String, String)],
    batch: &NodeBatch,
) -> Result<String, serde_json::Error> {
    let spec = serde_json::to_string(batch)?;
    let mut text = String::from(
        "#!/bin/sh\n# swarm: one attempt of one task per array element; see `swarm __node`.\n",
    );
    for (k, v) in env {
        if k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') && !k.is_empty() {
            text.push_str(&format!("export {k}={}\n", quote(v)));
        }
    }
    // serde_json escapes newlines, so the spec is one line and never the
    // terminator.
    text.push_str(&format!(
        "exec {} __node <<'SWARM_JOB_SPEC'\n{spec}\nSWARM_JOB_SPEC\n",
        quote(&swarm.display().to_string())
    ));
    Ok(text)
}

/// `value` in single quotes for sh.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tasks_are_packed_and_long_ones_run_alone() {
        // Tasks 1 and 4 took a minute or more before; 6 never ran.
        let expected = [
            Some(900),
            Some(61_000),
            Some(20),
            Some(30),
            Some(60_000),
            Some(10),
            None,
        ];
        assert_eq!(
            packs(2, &expected, 60_000),
            [vec![1], vec![0, 2], vec![4], vec![3, 5], vec![6]]
        );
        assert_eq!(
            packs(1, &expected, 60_000),
            (0..7).map(|i| vec![i]).collect::<Vec<_>>()
        );
        assert_eq!(packs(10, &[None; 3], 60_000), [vec![0, 1, 2]]);
    }

    #[test]
    fn script_quotes_and_carries_the_spec() {
        let element = |task: &str| NodeElement {
            selection: None,
            task: task.into(),
            attempt: 2,
            base: "b".into(),
            base_ref: "refs/swarm/r/base.d/b".into(),
        };
        let batch = NodeBatch {
            run: "r".into(),
            shared: "/s.git".into(),
            plan_path: "/p/plan.toml".into(),
            plan_text: "[[task]]\nid = 't'\nrun = \"echo 'hi'\"\n".into(),
            sandbox: true,
            grace_ms: 1000,
            scratch: None,
            cache_dir: None,
            egress_via_coordinator: false,
            gateway: None,
            shards: Vec::new(),
            elements: vec![element("t"), element("u")],
            packs: Vec::new(),
        };
        let env = vec![
            ("PATH".to_string(), "/bin:/it's".to_string()),
            ("BAD NAME".to_string(), "x".to_string()),
        ];
        let text = script(Path::new("/opt/swarm"), &env, &batch).unwrap();
        assert!(text.contains("export PATH='/bin:/it'\\''s'\n"), "{text}");
        assert!(!text.contains("BAD NAME"));
        let spec = text
            .lines()
            .skip_while(|l| !l.starts_with("exec '/opt/swarm' __node"))
            .nth(1)
            .unwrap();
        let back: NodeBatch = serde_json::from_str(spec).unwrap();
        assert_eq!(back.plan_text, batch.plan_text);
        // The plan once, each element's attempt by its index.
        assert_eq!(text.matches("echo 'hi'").count(), 1, "{text}");
        let second = back.job(1).unwrap();
        assert_eq!((second.task.as_str(), second.attempt), ("u", 2));
        assert_eq!(second.plan_text, batch.plan_text);
        assert!(back.job(2).is_none());
        // Without packs, element i is attempt i; with them, element i runs
        // packs[i] attempts after those of the elements before.
        let tasks = |jobs: Option<Vec<crate::run::remote::record::NodeJob>>| {
            jobs.map(|j| j.into_iter().map(|j| j.task).collect::<Vec<_>>())
        };
        assert_eq!(tasks(back.jobs(1)), Some(vec!["u".to_string()]));
        let packed = NodeBatch {
            elements: ["a", "b", "c"].into_iter().map(element).collect(),
            packs: vec![2, 1],
            ..batch.clone()
        };
        assert_eq!(tasks(packed.jobs(0)), Some(vec!["a".into(), "b".into()]));
        assert_eq!(tasks(packed.jobs(1)), Some(vec!["c".into()]));
        assert_eq!(tasks(packed.jobs(2)), None);
        assert!(text.ends_with("SWARM_JOB_SPEC\n"));
    }
}
