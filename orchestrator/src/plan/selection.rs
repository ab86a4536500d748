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
//!
//! What else an entry depends on comes only from the person, in the plan
//! (`affects`: a glob of changed paths and the entries it runs, `[]` for
//! docs that no test reads). swarm learns none from earlier runs by
//! decision: what a run shows of a test's reads (its report, the files'
//! access times) is written or could be rewritten by the code under test,
//! which a task may have changed, and a dependency it hid would skip a
//! test that gates.

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

/// What a sharded task with `affected = true` knows of its entries: all
/// of them, and what the person says other paths affect.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Affected {
    /// Every entry of the task.
    pub all: Vec<String>,
    /// The plan's `affects`, each glob with the entries it runs.
    pub affects: Vec<Affects>,
}

/// One rule of `affects`: a changed path `changes` matches runs `runs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affects {
    /// A glob of paths from the repository's root (`*` within a
    /// directory, `**` across), as written.
    pub changes: String,
    /// The task's entries it runs (those its entry globs matched), in the
    /// task's order; none for `[]`.
    pub runs: Vec<String>,
    /// Its entry globs that matched no entry (a typo, or tests since
    /// removed): such a rule is not followed (a path it matches runs every
    /// entry, as one no rule matches), since what it meant to run may be
    /// what it missed; `validate` and `run` warn.
    pub unmatched: Vec<String>,
}

/// A glob of `affects` (a changed path's or an entry's) as the plan's
/// matrix globs are: `*` within a directory, `**` across them.
pub fn glob(text: &str) -> Result<globset::GlobMatcher, globset::Error> {
    globset::GlobBuilder::new(text)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
}

/// What shard `id` (`entries`, its task's `affected`) runs, given what
/// reading the paths the run changed for it gave: `None` (every entry
/// runs) when no entry is left out, or when they could not be read
/// (nothing is skipped on a guess: said in the log).
pub fn select_read<E: std::fmt::Display>(
    id: &str,
    (entries, affected): (&[String], &Affected),
    changed: Result<Vec<String>, E>,
) -> Option<Selection> {
    let changed = match changed {
        Ok(changed) => changed,
        Err(e) => {
            tracing::warn!(task = %id, error = %e, "failed to read what the run changed: every entry runs");
            return None;
        }
    };
    let selection = select(entries, affected, &changed);
    (!selection.out.is_empty()).then_some(selection)
}

/// Which of `entries` (a shard's) run, given its task's `affected` (every
/// entry, the person's `affects`) and the paths the run changed for it
/// (`changed`, from the repository's root): an entry whose file changed,
/// and those of each rule of `affects` a changed path matches; every
/// entry when a changed path is neither an entry's file nor matched by a
/// rule (or a rule's glob no longer compiles).
pub fn select(entries: &[String], affected: &Affected, changed: &[String]) -> Selection {
    let everything = || Selection {
        run: entries.to_vec(),
        out: Vec::new(),
    };
    let files: HashSet<&str> = affected.all.iter().map(|e| entry_file(e)).collect();
    let Ok(rules) = affected
        .affects
        .iter()
        .map(|rule| glob(&rule.changes).map(|g| (g, rule)))
        .collect::<Result<Vec<_>, _>>()
    else {
        return everything();
    };
    let mut touched: HashSet<&str> = HashSet::new();
    for path in changed {
        let own = files.get(path.as_str()).copied();
        touched.extend(own);
        // A directory entry's files are its own, whatever a rule says
        // of them: each directory above the path that is an entry.
        let above = path.match_indices('/').map(|(at, _)| &path[..at]);
        touched.extend(above.filter_map(|dir| files.get(dir).copied()));
        let mut known = own.is_some();
        for (_, rule) in rules.iter().filter(|(g, _)| g.is_match(path)) {
            // A rule not followed (an entry glob matched none): what it
            // meant to run may be what it missed.
            if !rule.unmatched.is_empty() {
                return everything();
            }
            touched.extend(rule.runs.iter().map(|e| entry_file(e)));
            known = true;
        }
        if !known {
            return everything();
        }
    }
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

    /// The `affects` of `plan`'s first task, unsplit.
    fn affects_of(plan: &crate::plan::Plan) -> &[Affects] {
        match plan.tasks[0].sharding.as_deref() {
            Some(crate::plan::shards::Sharding::Unsplit { affects, .. }) => affects,
            other => panic!("{other:?}"),
        }
    }

    /// A task's `affected` of entries `all` and no `affects`.
    fn of(all: &[String]) -> Affected {
        Affected {
            all: all.to_vec(),
            affects: Vec::new(),
        }
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
        let s = select(&shard, &of(&all), &strings(&["tests/test_b.py"]));
        assert_eq!(s.run, ["tests/test_b.py"]);
        assert_eq!(s.out, ["tests/test_a.py", "tests/unit"]);
        // Another shard's entry changed: nothing of this one.
        let s = select(&shard, &of(&all), &strings(&["tests/test_c.py"]));
        assert_eq!((s.run.len(), s.out.len()), (0, 3));
        // Nothing changed: nothing runs.
        assert_eq!(select(&shard, &of(&all), &[]).run, Vec::<String>::new());
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
            let s = select(&shard, &of(&all), &strings(&["tests/test_b.py", other]));
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
    fn a_path_the_plans_affects_matches_runs_its_entries_not_every_entry() {
        let all = strings(&["tests/test_api.py", "tests/test_cli.py", "tests/test_db.py"]);
        let affected = Affected {
            all: all.clone(),
            affects: vec![
                Affects {
                    changes: "docs/**".into(),
                    runs: vec![],
                    unmatched: vec![],
                },
                Affects {
                    changes: "*.md".into(),
                    runs: vec![],
                    unmatched: vec![],
                },
                Affects {
                    changes: "src/api/**".into(),
                    runs: strings(&["tests/test_api.py", "tests/test_cli.py"]),
                    unmatched: vec![],
                },
                // Meant `tests/test_db.py`: not followed.
                Affects {
                    changes: "src/db/**".into(),
                    runs: vec![],
                    unmatched: strings(&["test/test_db.py"]),
                },
            ],
        };
        let shard = all.clone();
        let run = |changed: &[&str]| select(&shard, &affected, &strings(changed)).run;
        // Docs, the README: no entry runs.
        assert_eq!(
            run(&["docs/guide/intro.md", "README.md"]),
            Vec::<String>::new()
        );
        // `*` stays within a directory: a `.md` below one is not the rule's.
        assert_eq!(run(&["src/notes.md"]), shard);
        // Source a rule names runs its entries, with a test file changed.
        assert_eq!(
            run(&["src/api/routes.py", "tests/test_db.py", "CHANGES.md"]),
            shard
        );
        assert_eq!(
            run(&["src/api/routes.py", "docs/api.md"]),
            ["tests/test_api.py", "tests/test_cli.py"]
        );
        // A path no rule names, beside one a rule names: every entry.
        assert_eq!(run(&["src/api/routes.py", "src/db.py"]), shard);
        assert_eq!(run(&["tests/conftest.py"]), shard);
        assert_eq!(run(&["src/db/models.py"]), shard);
        // Also when a followed rule matches the path too.
        let mut wider = affected.clone();
        wider.affects.push(Affects {
            changes: "src/**".into(),
            runs: strings(&["tests/test_api.py"]),
            unmatched: vec![],
        });
        assert_eq!(
            select(&shard, &wider, &strings(&["src/db/models.py"])).run,
            shard
        );
        // A directory entry's own file runs it, whatever a rule says.
        let dirs = Affected {
            all: strings(&["tests/unit", "tests/test_api.py"]),
            affects: vec![Affects {
                changes: "**/*.json".into(),
                runs: vec![],
                unmatched: vec![],
            }],
        };
        let both = dirs.all.clone();
        assert_eq!(
            select(&both, &dirs, &strings(&["tests/unit/data/case.json"])).run,
            ["tests/unit"]
        );
        assert_eq!(
            select(&both, &dirs, &strings(&["config/app.json"])).run,
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_plans_affects_is_read_as_its_entries_and_a_rule_with_a_glob_matching_none_is_not_followed()
    {
        let parse = |affects: &str, affected: &str| {
            let text = format!(
                "[[task]]\nid = \"t\"\nshards = 2\n{affected}\nmatrix = {{ f = [\"tests/a.py\", \"tests/api/b.py\", \"tests/api/c.py\"] }}\n\
                 run = \"pytest {{entries}}\"\naffects = {affects}\n"
            );
            crate::plan::parse(std::path::Path::new("plan.toml"), text)
        };
        let plan = parse(
            r#"{ "docs/**" = [], "src/api/**" = ["tests/api/*.py", "tests/api/b.py"] }"#,
            "affected = true",
        )
        .unwrap();
        let affects = affects_of(&plan);
        assert_eq!(
            affects,
            [
                Affects {
                    changes: "docs/**".into(),
                    runs: vec![],
                    unmatched: vec![],
                },
                Affects {
                    changes: "src/api/**".into(),
                    runs: strings(&["tests/api/b.py", "tests/api/c.py"]),
                    unmatched: vec![],
                },
            ]
        );
        let err = |affects: &str, affected: &str| parse(affects, affected).unwrap_err().to_string();
        // An entry glob matching none is kept apart (the rule is not
        // followed) and warned of.
        let plan = parse(
            r#"{ "src/**" = ["test/*.py", "tests/a.py"] }"#,
            "affected = true",
        )
        .unwrap();
        let affects = affects_of(&plan);
        assert_eq!(
            (&affects[0].runs, &affects[0].unmatched),
            (&strings(&["tests/a.py"]), &strings(&["test/*.py"]))
        );
        let found = crate::plan::semantic::check(&plan, &|_| true, Default::default());
        let warnings: Vec<String> = found.warnings.iter().map(|w| w.to_string()).collect();
        insta::assert_snapshot!(warnings.join("\n"), @"`affects` of task `t`: `test/*.py` matches none of its entries, so a change to `src/**` runs every entry");
        insta::assert_snapshot!(
            err(r#"{ "src/[" = [] }"#, "affected = true"),
            @"`affects` of task `t`: `src/[` is not a glob: unclosed character class; missing ']'"
        );
        insta::assert_snapshot!(
            err(r#"{ "docs/**" = [] }"#, ""),
            @"task `t` has `affects` but not `affected = true`"
        );
    }

    #[test]
    fn parts_and_test_ids_go_by_their_files() {
        let all = strings(&["tests/big.py", "tests/small.py"]);
        let shard = strings(&[
            "tests/big.py\u{1f}0-500",
            "tests/small.py::test_one",
            "tests/small.py::test_two",
        ]);
        let s = select(&shard, &of(&all), &strings(&["tests/big.py"]));
        assert_eq!(s.run, ["tests/big.py\u{1f}0-500"]);
        // A test id is named as itself, a part as its entry, each once.
        assert_eq!(
            s.out,
            ["tests/small.py::test_one", "tests/small.py::test_two"]
        );
        let s = select(&shard, &of(&all), &strings(&["tests/small.py"]));
        assert_eq!(s.out, ["tests/big.py"]);
        // The shard of its other part does not name it again.
        let other = strings(&["tests/big.py\u{1f}500-1000"]);
        let s = select(&other, &of(&all), &strings(&["tests/small.py"]));
        assert_eq!((s.run.len(), s.out.len()), (0, 0));
    }
}
