use std::collections::BTreeSet;
use std::path::Path;

use super::*;
use crate::plan::origin::rules::assert_every_key_ruled;

/// An executor that supports every feature but one (`None`: all).
struct Lacks(Option<Feature>);

impl Capabilities for Lacks {
    fn kind(&self) -> &'static str {
        "fake"
    }
    fn supports(&self, feature: Feature) -> bool {
        self.0 != Some(feature)
    }
}

/// A plan that uses `feature`, and whether it does so on the command
/// line (`--record`). Exhaustive: a new feature needs its plan here.
fn using(feature: Feature) -> (&'static str, bool) {
    const TASK: &str = "[[task]]\nid = \"a\"\nrun = \"true\"\n";
    let plan = match feature {
        Feature::Tape => TASK,
        Feature::Setup => "[setup]\nrun = \"true\"\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n",
        Feature::Cleanup => "[cleanup]\nrun = \"true\"\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n",
        Feature::Shards => {
            "[[task]]\nid = \"t\"\nrun = \"pytest {entries}\"\nshards = 2\nmatrix = { file = [\"a.py\", \"b.py\"] }\n"
        }
        Feature::TestReports => "[[task]]\nid = \"a\"\nrun = \"true\"\njunit = \"report.xml\"\n",
        Feature::Agents => {
            "[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\n\n[[task]]\nid = \"a\"\nprompt = \"p\"\n"
        }
        Feature::AgentClis => {
            "[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\n\n[[task]]\nid = \"a\"\nagent = \"claude-code\"\nprompt = \"p\"\n"
        }
        Feature::McpServers => {
            "[mcp.files]\ncommand = [\"server\"]\n\n[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\n\n[[task]]\nid = \"a\"\nprompt = \"p\"\nmcp = [\"files\"]\n"
        }
        Feature::Wasm => "[[task]]\nid = \"a\"\nwasm = \"stamp.wasm\"\n",
        Feature::Egress => "[[task]]\nid = \"a\"\nrun = \"true\"\nnetwork = [\"example.com\"]\n",
        Feature::Limits => {
            "[defaults]\nmemory = \"1GiB\"\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n"
        }
        Feature::Stalls => "[[task]]\nid = \"a\"\nrun = \"true\"\nstall_after = \"1m\"\n",
        Feature::WarmWorktrees => "[[task]]\nid = \"a\"\nrun = \"true\"\nwarm = false\n",
        Feature::Experiments => {
            "[[task]]\nid = \"a\"\nrun = \"echo {n}\"\nvariants = { n = [1, 2] }\nscore = \"echo 1\"\npick = \"max\"\n"
        }
    };
    (plan, feature == Feature::Tape)
}

fn parsed(text: &str) -> Source {
    crate::plan::parse(Path::new("plan.toml"), text.to_string())
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .source
}

/// A fake executor lacking one feature refuses every plan that uses it,
/// at the key that asks: a plan feature its check does not ask the
/// executor about fails here.
#[test]
fn an_executor_lacking_a_feature_is_asked_by_every_plan_that_uses_it() {
    for feature in Feature::ALL {
        let (text, tape) = using(feature);
        let source = parsed(text);
        assert_eq!(
            unsupported(&source, tape, &Lacks(None)),
            None,
            "{feature:?}: refused by an executor that lacks nothing"
        );
        let refused = unsupported(&source, tape, &Lacks(Some(feature)))
            .unwrap_or_else(|| panic!("{feature:?} was never asked of the executor:\n{text}"));
        assert_eq!(refused.feature, feature, "{text}");
        // No other feature's lack refuses it: the plan asks for its own.
        let others: Vec<Feature> = Feature::ALL
            .into_iter()
            .filter(|&f| f != feature && unsupported(&source, tape, &Lacks(Some(f))).is_some())
            .collect();
        assert!(
            others.iter().all(|f| matches!(
                (feature, f),
                (Feature::McpServers, Feature::Agents) | (Feature::AgentClis, Feature::Agents)
            )),
            "{feature:?}'s plan also asks for {others:?}"
        );
    }
    // `ALL` holds every feature (a new one not listed is not walked).
    let listed: BTreeSet<Feature> = Feature::ALL.into_iter().collect();
    assert_eq!(listed.len(), Feature::ALL.len());
}

/// Every key of every table of the plan's schema has a rule here, and
/// every rule a key: a new key fails here until someone decides whether
/// an executor must offer something for it.
#[test]
fn every_key_of_every_table_says_what_it_needs_of_the_executor() {
    assert_every_key_ruled("plan::capabilities::NEEDS", |table| {
        NEEDS
            .iter()
            .filter(|r| r.table == table)
            .map(|r| r.key)
            .collect()
    });
    // Each feature but the command line's is asked for by some key.
    for feature in Feature::ALL {
        let asked = NEEDS.iter().any(|n| n.need == Need::Feature(feature));
        assert_eq!(asked, feature != Feature::Tape, "{feature:?}");
    }
}

/// What each executor offers, as a person reads it.
#[test]
fn each_executor_says_what_it_supports() {
    let table = |executor: &Executor| {
        Feature::ALL
            .into_iter()
            .filter(|&f| !executor.supports(f))
            .map(Feature::shown)
            .collect::<Vec<_>>()
            .join(", ")
    };
    insta::assert_snapshot!(table(&Executor::Local), @"");
    insta::assert_snapshot!(table(&Executor::Slurm(Box::default())), @"--record and --replay");
}

#[test]
fn a_refusal_names_the_key_and_what_to_do() {
    let source = parsed(using(Feature::Stalls).0);
    let refused = unsupported(&source, false, &Lacks(Some(Feature::Stalls))).unwrap();
    insta::assert_snapshot!(refused.to_string(), @"
    start run: the fake executor does not support stall detection (`stall_after` in task `a`)
    help: run the plan with --executor local, or take the key out
    ");
    let tape = unsupported(&source, true, &Executor::Slurm(Box::default())).unwrap();
    insta::assert_snapshot!(tape.to_string(), @"
    start run: the slurm executor does not support --record and --replay
    help: run the plan with --executor local to record or replay its model traffic
    ");
    // No network asks for no proxy.
    let none = parsed("[[task]]\nid = \"a\"\nrun = \"true\"\nnetwork = \"none\"\n");
    assert_eq!(
        unsupported(&none, false, &Lacks(Some(Feature::Egress))),
        None
    );
}
