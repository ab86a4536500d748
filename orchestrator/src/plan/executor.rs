//! The `[executor]` table: where the plan's task attempts run. `local`
//! (the default) is this machine; `slurm` hands each attempt to a Slurm
//! cluster as one batch job (see `run::slurm`).

// As in expand.rs: a PlanError is built once per mistake, on the way out.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use super::error::{PlanError, PlanErrorKind, Source};

/// The `[executor]` table as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSection {
    /// `local` (default): tasks run on this machine. `slurm`: each attempt
    /// is a Slurm batch job; the coordinator keeps the graph, the merges
    /// and the journal.
    pub kind: Option<ExecutorKind>,
    /// Slurm: the bare git repository the coordinator and the nodes share:
    /// a path on a file system every node mounts, or a URL they can reach
    /// (`ssh://host/path.git`). Created (bare) when it is a path that does
    /// not exist. Default: `.swarm/cluster.git` in the repository.
    #[schemars(with = "Option<String>")]
    pub repo: Option<Spanned<String>>,
    /// Slurm: `--partition` of every job.
    pub partition: Option<String>,
    /// Slurm: `--account` of every job.
    pub account: Option<String>,
    /// Slurm: `--qos` of every job.
    pub qos: Option<String>,
    /// Slurm: `--time` of every job, in Slurm's format (`30`, `1:00:00`,
    /// `2-00:00:00`). Default: the task's `timeout` plus its grace, rounded
    /// up to minutes; none when the task has no timeout (the partition's).
    #[schemars(with = "Option<String>")]
    pub time_limit: Option<Spanned<String>>,
    /// Slurm: `--cpus-per-task` of every job.
    #[schemars(range(min = 1))]
    pub cpus_per_task: Option<u32>,
    /// Slurm: `--mem` of every job, in Slurm's format (`4G`, `500M`).
    /// Default: the task's `memory`, when it sets one.
    #[schemars(with = "Option<String>")]
    pub mem: Option<Spanned<String>>,
    /// Slurm: more `sbatch` arguments, as a list (`["--constraint=ssd"]`).
    pub extra_args: Option<Vec<String>>,
    /// Slurm: the `swarm` binary on the nodes. Default: the path of the
    /// coordinator's own binary (a shared file system, or the same
    /// install everywhere).
    pub swarm: Option<String>,
    /// Slurm: the node-local directory where a job makes its clone and
    /// worktree. Default: the job's `$TMPDIR`, else `/tmp`.
    pub scratch: Option<String>,
    /// Slurm: the node-local directory where a node keeps `[setup]`'s
    /// outputs by key across jobs (the first job on a node with a key
    /// runs setup, later ones copy it; jobs at once wait for one). `%N`
    /// in it is the node's name (a cache per node on a file system the
    /// nodes share). Default: `swarm-cache-<uid>` in the job's scratch
    /// directory.
    pub cache_dir: Option<String>,
    /// Slurm: how a job's network lists (its task's, `[setup]`'s) reach
    /// their hosts. `node` (default): from the node, through its own
    /// egress proxy. `coordinator`: through this machine, for nodes with
    /// no way out but to it: the node's proxy tunnels each allowed
    /// connection through the coordinator's relay, which lets through
    /// only hosts a network list of the plan allows.
    pub egress: Option<Egress>,
    /// Slurm: how often the coordinator asks the cluster how its jobs are.
    /// Default: `1s`.
    #[schemars(with = "Option<String>")]
    pub poll_interval: Option<Spanned<String>>,
    /// Slurm: at most this many jobs submitted at once (pending or
    /// running). Default: 1000.
    #[schemars(range(min = 1))]
    pub max_jobs: Option<usize>,
    /// Slurm: at most this many attempts run one after another in one job
    /// (default 1: a job each). For short tasks, whose job costs more than
    /// they do: the cluster's scheduling, `swarm __node`, a fetch, the
    /// sandbox launcher and a push are paid once for all of them. Only
    /// attempts started together with the same `sbatch` arguments share a
    /// job, each still in its own worktree and sandbox; a job's `--time`
    /// (the default one) covers all of its attempts. Grants nothing.
    #[schemars(with = "Option<u32>")]
    pub tasks_per_job: Option<Spanned<i64>>,
    /// Slurm, with `tasks_per_job`: a task that took this long or longer
    /// in an earlier run (the run's duration history) gets a job of its
    /// own. Default: `1m`.
    #[schemars(with = "Option<String>")]
    pub pack_under: Option<Spanned<String>>,
}

/// How a cluster job's network lists reach their hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Egress {
    /// From the node itself.
    #[default]
    Node,
    /// Through the coordinator's relay.
    Coordinator,
}

/// Where attempts run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    #[default]
    Local,
    Slurm,
}

/// The checked `[executor]` table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Executor {
    #[default]
    Local,
    Slurm(Box<SlurmConfig>),
}

/// How a plan's attempts become Slurm jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmConfig {
    /// The shared repository as written (`None`: the default).
    pub repo: Option<String>,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    pub time_limit: Option<String>,
    pub cpus_per_task: Option<u32>,
    pub mem: Option<String>,
    pub extra_args: Vec<String>,
    pub swarm: Option<String>,
    pub scratch: Option<String>,
    pub cache_dir: Option<String>,
    pub egress: Egress,
    pub poll_interval: Duration,
    pub max_jobs: usize,
    /// At most this many attempts in one job (1: a job each).
    pub tasks_per_job: usize,
    /// Tasks expected to take this long or longer run alone.
    pub pack_under: Duration,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        Self {
            repo: None,
            partition: None,
            account: None,
            qos: None,
            time_limit: None,
            cpus_per_task: None,
            mem: None,
            extra_args: Vec::new(),
            swarm: None,
            scratch: None,
            cache_dir: None,
            egress: Egress::Node,
            poll_interval: Duration::from_secs(1),
            max_jobs: 1000,
            tasks_per_job: 1,
            pack_under: Duration::from_secs(60),
        }
    }
}

/// A local `[executor]` that sets keys only a cluster takes (`set`, each
/// key with whether it is set): one error naming them all.
fn refuse_cluster_keys(source: &Source, set: &[(&str, bool)], errors: &mut Vec<PlanError>) {
    let set: Vec<&str> = set.iter().filter(|(_, s)| *s).map(|(k, _)| *k).collect();
    if !set.is_empty() {
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    format!(
                        "[executor] sets {} but its kind is local",
                        set.iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None,
                    "",
                )
                .with_help("add kind = \"slurm\" to [executor], or remove those keys"),
        );
    }
}

/// Checks `[executor]`, each problem added to `errors`.
pub(super) fn check(
    source: &Source,
    section: &ExecutorSection,
    errors: &mut Vec<PlanError>,
) -> Executor {
    let slurm_only = [
        ("repo", section.repo.is_some()),
        ("partition", section.partition.is_some()),
        ("account", section.account.is_some()),
        ("qos", section.qos.is_some()),
        ("time_limit", section.time_limit.is_some()),
        ("cpus_per_task", section.cpus_per_task.is_some()),
        ("mem", section.mem.is_some()),
        ("extra_args", section.extra_args.is_some()),
        ("swarm", section.swarm.is_some()),
        ("scratch", section.scratch.is_some()),
        ("cache_dir", section.cache_dir.is_some()),
        ("egress", section.egress.is_some()),
        ("poll_interval", section.poll_interval.is_some()),
        ("max_jobs", section.max_jobs.is_some()),
        ("tasks_per_job", section.tasks_per_job.is_some()),
        ("pack_under", section.pack_under.is_some()),
    ];
    let kind = section.kind.unwrap_or_default();
    if kind == ExecutorKind::Local {
        refuse_cluster_keys(source, &slurm_only, errors);
        return Executor::Local;
    }
    let mut config = SlurmConfig {
        repo: section.repo.as_ref().map(|r| r.get_ref().clone()),
        partition: section.partition.clone(),
        account: section.account.clone(),
        qos: section.qos.clone(),
        time_limit: None,
        cpus_per_task: section.cpus_per_task,
        mem: None,
        extra_args: section.extra_args.clone().unwrap_or_default(),
        swarm: section.swarm.clone(),
        scratch: section.scratch.clone(),
        cache_dir: section.cache_dir.clone(),
        egress: section.egress.unwrap_or_default(),
        ..SlurmConfig::default()
    };
    if let Some(r) = &section.repo
        && r.get_ref().trim().is_empty()
    {
        errors.push(source.error(
            PlanErrorKind::BadValue,
            "[executor] repo is empty",
            Some(r.span()),
            "empty",
        ));
    }
    if let Some(t) = &section.time_limit {
        if is_slurm_time(t.get_ref()) {
            config.time_limit = Some(t.get_ref().clone());
        } else {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("invalid time_limit `{}`", t.get_ref()),
                        Some(t.span()),
                        "not a Slurm time",
                    )
                    .with_help(
                        "write minutes (`30`), `H:MM:SS` or `D-HH:MM:SS`, as sbatch --time takes",
                    ),
            );
        }
    }
    if let Some(m) = &section.mem {
        if is_slurm_mem(m.get_ref()) {
            config.mem = Some(m.get_ref().clone());
        } else {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("invalid mem `{}`", m.get_ref()),
                        Some(m.span()),
                        "not a Slurm size",
                    )
                    .with_help("write a number with an optional unit K, M, G or T, as sbatch --mem takes (`4G`)"),
            );
        }
    }
    if let Some(p) = &section.poll_interval {
        match humantime::parse_duration(p.get_ref()) {
            Ok(d) if d >= Duration::from_millis(50) => config.poll_interval = d,
            _ => errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("invalid poll_interval `{}`", p.get_ref()),
                        Some(p.span()),
                        "not a duration of 50ms or more",
                    )
                    .with_help("write a duration such as \"1s\" or \"500ms\""),
            ),
        }
    }
    if let Some(n) = section.max_jobs {
        config.max_jobs = n.max(1);
    }
    if let Some(n) = &section.tasks_per_job {
        match usize::try_from(*n.get_ref()) {
            Ok(count @ 1..=1000) => config.tasks_per_job = count,
            _ => errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("invalid tasks_per_job `{}`", n.get_ref()),
                        Some(n.span()),
                        "not between 1 and 1000",
                    )
                    .with_help("write how many attempts may share one job: 1 (a job each) to 1000"),
            ),
        }
    }
    if let Some(p) = &section.pack_under {
        match humantime::parse_duration(p.get_ref()) {
            Ok(d) => config.pack_under = d,
            Err(_) => errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("invalid pack_under `{}`", p.get_ref()),
                        Some(p.span()),
                        "not a duration",
                    )
                    .with_help("write a duration such as \"1m\" or \"30s\""),
            ),
        }
    }
    Executor::Slurm(Box::new(config))
}

/// Slurm's `--time` formats: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`,
/// `D-H:M:S`, or `UNLIMITED`.
fn is_slurm_time(text: &str) -> bool {
    if text.eq_ignore_ascii_case("unlimited") || text.eq_ignore_ascii_case("infinite") {
        return true;
    }
    let (days, rest) = match text.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, text),
    };
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    days.is_none_or(number) && {
        let parts: Vec<&str> = rest.split(':').collect();
        parts.len() <= 3 && parts.iter().all(|p| number(p))
    }
}

/// Slurm's `--mem` format: digits with an optional unit.
fn is_slurm_mem(text: &str) -> bool {
    let digits = text.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && text.len() - digits.len() <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_formats() {
        for ok in ["30", "1:00:00", "2-00:00:00", "2-4", "UNLIMITED", "10:30"] {
            assert!(is_slurm_time(ok), "{ok}");
        }
        for bad in ["", "1h", "1::2", "a-1", "1:2:3:4"] {
            assert!(!is_slurm_time(bad), "{bad}");
        }
        for ok in ["4G", "500M", "1024", "2t"] {
            assert!(is_slurm_mem(ok), "{ok}");
        }
        for bad in ["", "G", "4GB", "1.5G"] {
            assert!(!is_slurm_mem(bad), "{bad}");
        }
    }
}
