//! What `swarm validate` (and `swarm mcp`'s `validate`) says of a checked
//! plan: its shape (tasks, roots, longest chain, base), the values its
//! matrices listed, how its sharded tasks would be split, what its tasks
//! are granted, where their worktrees go, their setup, and which
//! worktrees are kept warm.

use std::fmt::Write as _;
use std::path::Path;

use crate::assemble::Checked;
use crate::durations::History;
use crate::graph::TaskGraph;
use crate::ids::TaskIndex;
use crate::plan::Plan;
use crate::plan::shard_parts;

/// What a run of `plan` (shown as `shown`) would be, as `checked` found it
/// on this host, from `base` (the commit `plan.base` names) in the
/// repository at `workdir`, as text; `home` is the repository's worktree
/// home and `includes` the line about `.worktreeinclude`, if any.
pub fn describe(
    plan: &Plan,
    shown: &str,
    checked: &Checked,
    base: git2::Oid,
    workdir: &Path,
    home: &Path,
    includes: Option<&str>,
) -> String {
    let mut out = String::new();
    let graph = TaskGraph::new(&plan.tasks);
    let roots = TaskIndex::all(graph.len())
        .filter(|&i| graph.deps(i).next().is_none())
        .count();
    let longest = TaskIndex::all(graph.len())
        .map(|i| graph.critical_path(i))
        .max()
        .unwrap_or(0);
    // A sharded task runs as its shards: said, with how many they are
    // now (by the durations learned).
    let history = crate::plan::shards::unsplit(plan)
        .next()
        .map(|_| History::load(workdir));
    let sharded: Vec<(String, Vec<Vec<String>>)> = history
        .as_ref()
        .map(|h| h.shard_groups(plan, checked.concurrency))
        .unwrap_or_default();
    let tasks = task_count(plan, &sharded);
    let _ = writeln!(
        &mut out,
        "{}: ok: {tasks}, {} without dependencies, longest chain {}, base {} ({})",
        shown,
        roots,
        longest,
        plan.base,
        &base.to_string()[..12]
    );
    for listed in &plan.listed {
        let more = if listed.count > listed.first.len() {
            ", …"
        } else {
            ""
        };
        let _ = writeln!(
            &mut out,
            "matrix            {} `{}`: {} value{} from the {} ({}{more})",
            listed.task,
            listed.key,
            listed.count,
            if listed.count == 1 { "" } else { "s" },
            listed.from,
            crate::escape::line(&listed.first.join(", ")),
        );
    }
    // How tasks of many entries would be split now, by what the
    // repository's earlier runs took.
    if let Some(history) = &history {
        for (task, groups) in sharded {
            shard_lines(&mut out, history, &task, &groups);
        }
    }
    out.push_str(&super::summary::grants(
        &checked.grants.read_paths,
        &checked.grants.toolchains,
        plan.caches.then_some(home),
    ));
    let _ = writeln!(&mut out, "worktrees         {}", home.display());
    if let Some(line) = includes {
        let _ = writeln!(&mut out, "includes          {line}");
    }
    if let Some(setup) = &plan.setup {
        let key = match setup.key.is_empty() {
            true => "no key: runs in every fresh worktree".to_string(),
            false => format!("kept by the content of {}", setup.key.join(", ")),
        };
        let _ = writeln!(
            &mut out,
            "setup             {} ({key}; network {})",
            crate::escape::line(&setup.run),
            setup.network
        );
        // A read-only task's checkout is shared and never set up: said
        // here, before it fails for a missing install.
        let readonly: Vec<&str> = plan
            .tasks
            .iter()
            .filter(|t| t.setup && t.isolation == swarm_protocol::Isolation::Readonly)
            .map(|t| t.id.as_str())
            .collect();
        if !readonly.is_empty() {
            let _ = writeln!(
                &mut out,
                "setup             not for read-only task{} {} (their checkout is shared and never set up: give them `isolation = \"worktree\"` if they need what setup installs)",
                if readonly.len() == 1 { "" } else { "s" },
                readonly
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let worktree_tasks = plan
        .tasks
        .iter()
        .filter(|t| t.isolation == swarm_protocol::Isolation::Worktree)
        .count();
    let warm = plan
        .tasks
        .iter()
        .filter(|t| t.warm_by_default(worktree_tasks))
        .count();
    if warm > 0 {
        let _ = writeln!(
            &mut out,
            "warm              {}: kept between runs ({}/.warm; `warm = false` opts out)",
            match warm {
                1 => "1 task's worktree".to_string(),
                n => format!("{n} tasks' worktrees"),
            },
            home.display()
        );
    }
    out
}

/// How many tasks `plan` runs, as `swarm validate`'s first line says it:
/// its experiments with their variants, its sharded tasks as their shards
/// (`sharded`).
fn task_count(plan: &Plan, sharded: &[(String, Vec<Vec<String>>)]) -> String {
    // Variants are counted by their experiment.
    let variants = plan.tasks.iter().filter(|t| t.variant().is_some()).count();
    let experiments = plan
        .tasks
        .iter()
        .filter(|t| t.experiment().is_some())
        .count();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    // As the plan names them (an experiment once), then what runs: its
    // variants, each shard.
    let named = plan.tasks.len() - variants;
    let mut notes = Vec::new();
    if experiments > 0 {
        notes.push(format!(
            "{experiments} experiment{} of {variants} variant{}",
            plural(experiments),
            plural(variants)
        ));
    }
    let shards: usize = sharded.iter().map(|(_, g)| g.len()).sum();
    if !sharded.is_empty() {
        notes.push(format!("{} sharded into {shards}", sharded.len()));
    }
    if notes.is_empty() {
        return format!("{named} task{}", plural(named));
    }
    let run = plan.tasks.len() - experiments - sharded.len() + shards;
    format!(
        "{named} task{} ({}: {run} task{} run)",
        plural(named),
        notes.join("; "),
        plural(run)
    )
}

/// What `swarm validate` says of sharded task `task` split into `groups`:
/// its shards' expected times by `history`, and its entries split into
/// parts.
fn shard_lines(out: &mut String, history: &History, task: &str, groups: &[Vec<String>]) {
    // Each entry once (the parts of one split across shards by its
    // tests counted as it), and the split ones with their parts.
    let mut wholes: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut parted: Vec<(&str, usize)> = Vec::new();
    for name in groups.iter().flatten() {
        let entry = shard_parts::whole(name);
        if shard_parts::parse(name).is_some() {
            match parted.iter_mut().find(|(e, _)| *e == entry) {
                Some((_, n)) => *n += 1,
                None => parted.push((entry, 1)),
            }
        }
        if seen.insert(entry) {
            wholes.push(entry);
        }
    }
    let entries = wholes.len();
    let known = wholes
        .iter()
        .filter(|e| history.entry_estimate(task, e).is_some())
        .count();
    // Each shard: its entries' times, and what any shard takes (twice
    // for one holding a part: it lists the tests first).
    let startup = history.startup(task).unwrap_or(0);
    let times: Vec<Option<u64>> = groups
        .iter()
        .map(|g| {
            let ms = history.group_estimate(task, g);
            let lists = g.iter().any(|e| shard_parts::parse(e).is_some());
            ms.map(|ms| {
                ms.saturating_add(startup)
                    .saturating_add(if lists { startup } else { 0 })
            })
        })
        .collect();
    let expected: Vec<String> = groups
        .iter()
        .zip(&times)
        .map(|(g, ms)| match ms {
            Some(ms) => format!("{} ({:.1} s)", g.len(), *ms as f64 / 1000.0),
            None => g.len().to_string(),
        })
        .collect();
    // With every shard's time known: the longest, which the suite
    // takes, and how far it is from the mean.
    let makespan = match times.iter().copied().collect::<Option<Vec<u64>>>() {
        Some(t) if !t.is_empty() => {
            let (max, sum) = (t.iter().copied().max().unwrap_or(0), t.iter().sum::<u64>());
            let mean = sum as f64 / t.len() as f64;
            let spread = if mean > 0.0 { max as f64 / mean } else { 1.0 };
            format!(
                "; expected {:.1} s, longest/mean {spread:.2}",
                max as f64 / 1000.0
            )
        }
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "shards            {task}: {entries} entr{} in {} task{} ({task}-1 ...): {} ({}){makespan}",
        if entries == 1 { "y" } else { "ies" },
        groups.len(),
        if groups.len() == 1 { "" } else { "s" },
        expected.join(" + "),
        match known {
            0 => "no durations known yet: grouped by count".to_string(),
            n if n == entries => "balanced by the durations of earlier runs".to_string(),
            n => format!("{n} of {entries} durations known, the rest counted as typical"),
        },
    );
    for (entry, parts) in parted {
        let _ = writeln!(
            out,
            "                  {}: longer than a mean shard, split in {parts} parts by the tests `list_tests` lists",
            crate::escape::line(entry)
        );
    }
}
