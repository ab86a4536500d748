//! Test selection by paths (`affected = true` on a sharded task): which of
//! a shard's entries the run's changes could affect, so that the others
//! are skipped and reported as skipped by selection.
//!
//! What a shard sees of the run is the commit it starts from (the run's
//! base with its dependencies' results merged); the paths that differ
//! from the run's base are what the run changed for it. An entry runs
//! when one of those is its file. Which other paths an entry depends on
//! swarm does not know (a test imports source, reads fixtures, runs under
//! a `conftest.py`; a directory entry's files may be what another entry's
//! tests import), so a changed path that is no entry's file selects every
//! entry: a test is never skipped on a guess, and a run that changed only
//! test files runs only those. A run that changed nothing a shard sees
//! runs none of its entries.

use std::collections::HashSet;

use super::shard_parts;

/// A shard's entries split by the run's changes.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Selection {
    /// The entries (and parts) to run, in the shard's order.
    pub run: Vec<String>,
    /// The entries no change affects (a part named as its entry, once).
    pub out: Vec<String>,
}

/// The file (or directory) entry `entry` runs tests of: a part's, or a
/// test id's (`tests/test_a.py::TestX`), is its file's.
pub fn entry_file(entry: &str) -> &str {
    let whole = shard_parts::whole(entry);
    whole.split_once("::").map_or(whole, |(file, _)| file)
}

/// What shard `id` (`entries` of `all`) runs, given what reading the
/// paths the run changed for it gave: `None` (every entry runs) when no
/// entry is left out, or when they could not be read (nothing is skipped
/// on a guess: said in the log).
pub fn select_read<E: std::fmt::Display>(
    id: &str,
    (entries, all): (&[String], &[String]),
    changed: Result<Vec<String>, E>,
) -> Option<Selection> {
    let changed = match changed {
        Ok(changed) => changed,
        Err(e) => {
            tracing::warn!(task = %id, error = %e, "failed to read what the run changed: every entry runs");
            return None;
        }
    };
    let selection = select(entries, all, &changed);
    (!selection.out.is_empty()).then_some(selection)
}

/// Which of `entries` (a shard's) run, given every entry of its task
/// (`all`) and the paths the run changed for it (`changed`, from the
/// repository's root).
pub fn select(entries: &[String], all: &[String], changed: &[String]) -> Selection {
    let files: HashSet<&str> = all.iter().map(|e| entry_file(e)).collect();
    if !changed.iter().all(|path| files.contains(path.as_str())) {
        return Selection {
            run: entries.to_vec(),
            out: Vec::new(),
        };
    }
    let touched: HashSet<&str> = changed.iter().map(String::as_str).collect();
    let mut selection = Selection::default();
    for entry in entries {
        if touched.contains(entry_file(entry)) {
            selection.run.push(entry.clone());
            continue;
        }
        // An entry in parts over shards is named once, by the shard that
        // holds its first part.
        let first = shard_parts::parse(entry).is_none_or(|p| p.ranges.iter().any(|r| r.0 == 0));
        let name = shard_parts::whole(entry).to_string();
        if first && !selection.out.contains(&name) {
            selection.out.push(name);
        }
    }
    selection
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_the_entries_the_run_changed_run_unless_it_changed_something_else() {
        let all = strings(&[
            "tests/test_a.py",
            "tests/test_b.py",
            "tests/unit",
            "tests/test_c.py",
        ]);
        let shard = strings(&["tests/test_a.py", "tests/test_b.py", "tests/unit"]);
        // A test file changed: it runs, alone.
        let s = select(&shard, &all, &strings(&["tests/test_b.py"]));
        assert_eq!(s.run, ["tests/test_b.py"]);
        assert_eq!(s.out, ["tests/test_a.py", "tests/unit"]);
        // Another shard's entry changed: nothing of this one.
        let s = select(&shard, &all, &strings(&["tests/test_c.py"]));
        assert_eq!((s.run.len(), s.out.len()), (0, 3));
        // Nothing changed: nothing runs.
        assert_eq!(select(&shard, &all, &[]).run, Vec::<String>::new());
        // Source, a conftest.py beside the tests, a file named like an
        // entry's prefix: any entry may depend on it, so all run.
        for other in [
            "src/lib.py",
            "tests/conftest.py",
            "tests/test_a.pyc",
            "tests",
            // below a directory entry: another entry's tests may import it
            "tests/unit/helpers.py",
        ] {
            let s = select(&shard, &all, &strings(&["tests/test_b.py", other]));
            assert_eq!((s.run, s.out), (shard.clone(), vec![]), "{other}");
        }
    }

    #[test]
    fn a_shard_narrowed_runs_its_selected_entries_or_nothing() {
        let text = "[[task]]\nid = \"t\"\nshards = 2\naffected = true\njunit = \"r.xml\"\n\
                    matrix = { f = [\"a.py\", \"b.py\", \"c.py\"] }\nrun = \"pytest {entries}\"\n";
        let mut plan = crate::plan::parse(std::path::Path::new("plan.toml"), text.into()).unwrap();
        let groups = vec![(
            "t".to_string(),
            vec![strings(&["a.py", "c.py"]), strings(&["b.py"])],
        )];
        crate::plan::shards::split(&mut plan, &groups).unwrap();
        let shard = &plan.tasks[0];
        let run = |t: &crate::plan::Task| match &t.payload {
            crate::plan::Payload::Command { run } => run.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(run(shard), "pytest a.py c.py");
        let only = |run: &[&str], out: &[&str]| Selection {
            run: strings(run),
            out: strings(out),
        };
        let some = crate::plan::shards::narrowed(shard, &only(&["c.py"], &["a.py"])).unwrap();
        assert_eq!(
            (run(&some), some.junit.as_deref()),
            ("pytest c.py".into(), Some("r.xml"))
        );
        let none = crate::plan::shards::narrowed(shard, &only(&[], &["a.py", "c.py"])).unwrap();
        assert_eq!(
            (run(&none), none.junit.as_deref()),
            (crate::plan::shards::NOTHING_AFFECTED.into(), None)
        );
        // In `[defaults]`: every sharded task's, none of the others'.
        let text = "[defaults]\naffected = true\n\n[[task]]\nid = \"t\"\nshards = 2\n\
                    matrix = { f = [\"a.py\", \"b.py\"] }\nrun = \"pytest {entries}\"\n\n\
                    [[task]]\nid = \"u\"\nrun = \"true\"\n";
        let plan = crate::plan::parse(std::path::Path::new("plan.toml"), text.into()).unwrap();
        let affected = |t: &crate::plan::Task| match t.sharding.as_deref() {
            Some(crate::plan::shards::Sharding::Unsplit { affected, .. }) => Some(*affected),
            _ => None,
        };
        assert_eq!(
            plan.tasks.iter().map(affected).collect::<Vec<_>>(),
            [Some(true), None]
        );
        // `affected` on a task that is not sharded is refused, saying why.
        let text = "[[task]]\nid = \"t\"\nrun = \"true\"\naffected = true\n";
        let err = crate::plan::parse(std::path::Path::new("plan.toml"), text.into()).unwrap_err();
        insta::assert_snapshot!(err.to_string(), @"task `t` has `affected` but not `shards`");
    }

    #[test]
    fn parts_and_test_ids_go_by_their_files() {
        let all = strings(&["tests/big.py", "tests/small.py"]);
        let shard = strings(&[
            "tests/big.py\u{1f}0-500",
            "tests/small.py::test_one",
            "tests/small.py::test_two",
        ]);
        let s = select(&shard, &all, &strings(&["tests/big.py"]));
        assert_eq!(s.run, ["tests/big.py\u{1f}0-500"]);
        // A test id is named as itself, a part as its entry, each once.
        assert_eq!(
            s.out,
            ["tests/small.py::test_one", "tests/small.py::test_two"]
        );
        let s = select(&shard, &all, &strings(&["tests/small.py"]));
        assert_eq!(s.out, ["tests/big.py"]);
        // The shard of its other part does not name it again.
        let other = strings(&["tests/big.py\u{1f}500-1000"]);
        let s = select(&other, &all, &strings(&["tests/small.py"]));
        assert_eq!((s.run.len(), s.out.len()), (0, 0));
    }
}
