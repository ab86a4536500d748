//! Unit tests of plan checking that need no repository.

use std::path::Path;

use super::*;

fn parse_ok(text: &str) -> Plan {
    match parse(Path::new("plans/test.toml"), text.into()) {
        Ok(plan) => plan,
        Err(e) => panic!("plan rejected: {e:?}"),
    }
}

fn parse_err(text: &str) -> PlanError {
    match parse(Path::new("plans/test.toml"), text.into()) {
        Ok(_) => panic!("plan accepted"),
        Err(e) => *e,
    }
}

#[test]
fn defaults_apply_and_tasks_override_them() {
    let plan = parse_ok(
        "[defaults]\ntimeout = \"90s\"\nretries = 2\nenv = { A = \"1\", B = \"2\" }\n\n[[task]]\nid = \"a\"\nrun = \"x\"\nretries = 0\nenv = { B = \"3\" }\n",
    );
    let a = &plan.tasks[0];
    assert_eq!(a.timeout, Some(Duration::from_secs(90)));
    assert_eq!(a.retries, 0);
    assert_eq!(a.env.get("A").map(String::as_str), Some("1"));
    assert_eq!(a.env.get("B").map(String::as_str), Some("3"));
    assert_eq!(plan.name, "test");
    assert_eq!(plan.base, "HEAD");
    assert_eq!(plan.sandbox, SandboxMode::Landlock);
    assert_eq!(plan.on_failure, OnFailure::Stop);
}

#[test]
fn matrix_expands_in_sorted_key_order_and_template_deps_fan_in() {
    let plan = parse_ok(
        "[[task]]\nid = \"t-{b}-{a}\"\nrun = \"echo {a}{b}\"\nmatrix = { b = [\"x\", \"y\"], a = [1, 2] }\n\n[[task]]\nid = \"all\"\ndeps = [\"t-{b}-{a}\"]\nrun = \"true\"\n",
    );
    let ids: Vec<&str> = plan.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["t-x-1", "t-y-1", "t-x-2", "t-y-2", "all"]);
    assert_eq!(plan.tasks[1].run, "echo 1y");
    assert_eq!(plan.tasks[4].deps.len(), 4);
}

#[test]
fn errors_carry_kinds_and_positions() {
    assert_eq!(
        parse_err("[[task]]\nid = \"a\"\nrun = \"x\"\nrun = \"y\"\n").kind,
        PlanErrorKind::Syntax
    );
    let e = parse_err("[[task]]\nid = \"a\"\nrnu = \"x\"\n");
    assert_eq!(e.kind, PlanErrorKind::UnknownKey);
    assert_eq!(e.help.as_deref(), Some("did you mean `run`?"));
    assert!(e.span.is_some());
    assert_eq!(
        parse_err("[[task]]\nid = \"a\"\nrun = \"x\"\ndeps = [\"zz\"]\n").kind,
        PlanErrorKind::UnknownDependency
    );
    let cycle = parse_err(
        "[[task]]\nid = \"a\"\nrun = \"x\"\ndeps = [\"b\"]\n[[task]]\nid = \"b\"\nrun = \"x\"\ndeps = [\"a\"]\n",
    );
    assert_eq!(cycle.kind, PlanErrorKind::Cycle);
    assert_eq!(cycle.message, "dependency cycle: a -> b -> a");
    assert_eq!(
        parse_err("[defaults]\nid = \"x\"\n[[task]]\nid = \"a\"\nrun = \"x\"\n").kind,
        PlanErrorKind::BadValue
    );
    assert_eq!(parse_err("").kind, PlanErrorKind::Empty);
}

#[test]
fn ids_and_run_names_are_ref_safe() {
    assert!(is_valid_task_id("build-core_2"));
    for bad in ["", "A", "a/b", "a.b", "a b", "a..b"] {
        assert!(!is_valid_task_id(bad), "{bad}");
    }
    assert!(is_valid_run_name("Refactor.v2-x"));
    for bad in [
        "", ".x", "-x", "a..b", "x.lock", "x.", "a/b", "a b", "latest",
    ] {
        assert!(!is_valid_run_name(bad), "{bad}");
    }
}

#[test]
fn keys_other_tools_use_and_numbers_without_units_get_examples() {
    let e = parse_err("[[task]]\nid = \"a\"\nrun = \"x\"\ndepends_on = [\"b\"]\n");
    assert_eq!(e.kind, PlanErrorKind::UnknownKey);
    assert_eq!(e.help.as_deref(), Some("did you mean `deps`?"));
    let e = parse_err("[[task]]\nid = \"a\"\ncommand = \"x\"\n");
    assert_eq!(e.help.as_deref(), Some("did you mean `run`?"));

    let e = parse_err("[[task]]\nid = \"a\"\nrun = \"x\"\ntimeout = 300\n");
    assert_eq!(
        e.help.as_deref(),
        Some("`timeout` is a string with a unit, e.g. timeout = \"300s\"")
    );
    let e = parse_err("[defaults]\nmemory = 512\n[[task]]\nid = \"a\"\nrun = \"x\"\n");
    assert_eq!(
        e.help.as_deref(),
        Some("`memory` is a string with a unit, e.g. memory = \"512MiB\"")
    );
}
