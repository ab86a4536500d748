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
    assert_eq!(plan.tasks[1].command(), Some("echo 1y"));
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

/// Messages of all the errors `parse_err` found, in order.
fn messages(e: &PlanError) -> Vec<String> {
    e.all().map(|e| e.message.clone()).collect()
}

/// All the errors as a person reads them: plain text, each with the lines
/// of the plan it points at.
fn shown(e: &PlanError) -> String {
    render(
        &e.all().collect::<Vec<_>>(),
        miette::Severity::Error,
        e.omitted,
        false,
    )
}

#[test]
fn every_error_is_reported_in_file_order() {
    let e = parse_err(
        "[swarm]\nconcurrency = 0\n\n[[task]]\nid = \"Bad\"\nrun = \"x\"\n\n[[task]]\nid = \"b\"\nrun = \"x\"\ntimeout = \"soon\"\nmemory = \"lots\"\ndeps = [\"zz\"]\n\n[[task]]\nid = \"b\"\nrun = \"x\"\n",
    );
    assert_eq!(
        messages(&e),
        [
            "concurrency must be at least 1",
            "invalid task id `Bad`",
            "invalid timeout `soon` for task `b`: expected number at 0",
            "invalid memory `lots` for task `b`: expected a number and a unit",
            "task `b` depends on unknown task `zz`",
            "duplicate task id `b`",
        ]
    );
    assert_eq!(e.count(), 6);
    assert!(e.all().all(|e| e.span.is_some()));
}

#[test]
fn a_mistake_every_expansion_makes_is_reported_once() {
    let e = parse_err(
        "[[task]]\nid = \"t-{n}\"\nrun = \"x\"\ntimeout = \"soon\"\nmatrix = { n = [1, 2, 3] }\n",
    );
    assert_eq!(
        messages(&e),
        ["invalid timeout `soon` for task `t-{n}`: expected number at 0"]
    );
}

#[test]
fn errors_beyond_the_cap_are_counted() {
    let tasks: String = (0..30)
        .map(|i| format!("[[task]]\nid = \"t{i}\"\nrun = \"x\"\ndeps = [\"nope{i}\"]\n"))
        .collect();
    let e = parse_err(&tasks);
    assert_eq!(e.all().count(), MAX_ERRORS);
    assert_eq!(e.omitted, 30 - MAX_ERRORS);
    assert_eq!(e.count(), 30);
    insta::assert_snapshot!(messages(&e)[0], @"task `t0` depends on unknown task `nope0`");
}

#[test]
fn deps_on_a_task_with_errors_are_not_reported_again() {
    let e = parse_err(
        "[[task]]\nid = \"a\"\nrun = \"x\"\ntimeout = \"soon\"\n\n[[task]]\nid = \"b\"\nrun = \"x\"\ndeps = [\"a\"]\n",
    );
    assert_eq!(e.count(), 1, "{:?}", messages(&e));
}

#[test]
fn a_base_set_in_the_plan_keeps_its_span() {
    let text = "[swarm]\nbase = \"nope\"\n[[task]]\nid = \"a\"\nrun = \"x\"\n";
    let plan = parse_ok(text);
    let BaseFrom::Plan(span) = plan.base_from.clone() else {
        panic!("{:?}", plan.base_from);
    };
    assert_eq!(&text[span], "\"nope\"");
    let e = plan
        .unknown_base(Path::new("/repo"))
        .map(|e| (e.message, e.help));
    assert_eq!(
        e,
        Some((
            "base `nope` names no branch, tag or commit of /repo".to_string(),
            Some("set `base` in [swarm] (or --base) to an existing branch, tag or commit".into())
        ))
    );
    assert_eq!(
        parse_ok("[[task]]\nid = \"a\"\nrun = \"x\"\n").base_from,
        BaseFrom::Default
    );
}

#[test]
fn glob_deps_match_ids_after_expansion_but_never_the_task_itself() {
    let plan = parse_ok(
        "[[task]]\nid = \"fmt-{c}\"\nrun = \"x\"\nmatrix = { c = [\"a\", \"b\"] }\n\n[[task]]\nid = \"fmt-all\"\nrun = \"x\"\ndeps = [\"fmt-*\"]\n\n[[task]]\nid = \"lint\"\nrun = \"x\"\ndeps = [\"fmt-?\", \"fmt-[b]\"]\n",
    );
    let deps = |id: &str| {
        plan.tasks
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.deps.clone())
            .unwrap_or_default()
    };
    assert_eq!(deps("fmt-all"), ["fmt-a", "fmt-b"]);
    assert_eq!(deps("lint"), ["fmt-a", "fmt-b"]);
}

#[test]
fn a_glob_matching_nothing_points_at_it_with_a_suggestion() {
    let text = "[[task]]\nid = \"fmt-a\"\nrun = \"x\"\n\n[[task]]\nid = \"b\"\nrun = \"x\"\ndeps = [\"fnt-*\"]\n";
    let e = parse_err(text);
    assert_eq!(e.kind, PlanErrorKind::UnknownDependency);
    assert_eq!(e.message, "`deps` glob `fnt-*` matches no task");
    assert_eq!(e.help.as_deref(), Some("did you mean `fmt-*`?"));
    let span = e.span.map(|s| s.offset()..s.offset() + s.len());
    assert_eq!(span.map(|s| &text[s]), Some("\"fnt-*\""));
    let e = parse_err("[[task]]\nid = \"a\"\nrun = \"x\"\ndeps = [\"[a\"]\n");
    assert!(e.message.starts_with("invalid glob `[a`"), "{}", e.message);
}

#[test]
fn cycles_through_globs_are_cycles() {
    let e = parse_err(
        "[[task]]\nid = \"a-1\"\nrun = \"x\"\ndeps = [\"b*\"]\n\n[[task]]\nid = \"b\"\nrun = \"x\"\ndeps = [\"a-*\"]\n",
    );
    assert_eq!(e.kind, PlanErrorKind::Cycle);
    assert_eq!(e.message, "dependency cycle: a-1 -> b -> a-1");
}

fn ids(plan: &Plan) -> Vec<&str> {
    plan.tasks.iter().map(|t| t.id.as_str()).collect()
}

#[test]
fn slugs_make_ids_of_any_value() {
    for (value, slug) in [
        ("src/a.rs", "src-a-rs"),
        ("Src/Main.RS", "src-main-rs"),
        ("./x//y.", "x-y"),
        ("a b\tc", "a-b-c"),
        ("__init__.py", "__init__-py"),
        ("já", "j"),
        ("already-ok_1", "already-ok_1"),
    ] {
        assert_eq!(matrix::slug(value), slug, "{value}");
    }
}

#[test]
fn matrix_values_are_slugged_in_ids_and_deps_and_raw_elsewhere() {
    let plan = parse_ok(
        "[[task]]\nid = \"build-{file}\"\nrun = \"cc {file} -o {file:slug}\"\npaths = [\"{file}\"]\nenv = { F = \"{file}\" }\nmatrix = { file = [\"src/a.c\", \"src/B.c\"] }\n\n[[task]]\nid = \"lint-{file}\"\nrun = \"lint {file}\"\ndeps = [\"build-{file}\"]\nmatrix = { file = [\"src/a.c\"] }\n",
    );
    assert_eq!(
        ids(&plan),
        ["build-src-a-c", "build-src-b-c", "lint-src-a-c"]
    );
    let a = &plan.tasks[0];
    assert_eq!(a.command(), Some("cc src/a.c -o src-a-c"));
    assert_eq!(a.paths, ["src/a.c"]);
    assert_eq!(a.env.get("F").map(String::as_str), Some("src/a.c"));
    assert_eq!(plan.tasks[2].deps, ["build-src-a-c"]);
}

#[test]
fn values_whose_slugs_collide_are_named_both() {
    let e = parse_err(
        "[[task]]\nid = \"t-{f}\"\nrun = \"x\"\nmatrix = { f = [\"a/b\", \"a.b\", \"c\"] }\n",
    );
    assert_eq!(e.kind, PlanErrorKind::DuplicateId);
    assert_eq!(
        e.message,
        "matrix values `a/b` and `a.b` of `f` make the same id `t-a-b`"
    );
    let e = parse_err("[[task]]\nid = \"t\"\nrun = \"{f:upper}\"\nmatrix = { f = [\"a\"] }\n");
    insta::assert_snapshot!(e.message, @"task `t`: `{f:upper}` in `run` has an unknown modifier `upper`");
}

#[test]
fn include_gives_exactly_its_combinations_or_adds_to_the_cross_product() {
    let plan = parse_ok(
        "[[task]]\nid = \"b-{os}-{arch}\"\nrun = \"make {os} {arch}\"\nmatrix = { include = [{ os = \"linux\", arch = \"x86_64\" }, { os = \"macos\", arch = \"aarch64\" }] }\n",
    );
    assert_eq!(ids(&plan), ["b-linux-x86_64", "b-macos-aarch64"]);
    assert_eq!(plan.tasks[1].command(), Some("make macos aarch64"));

    let plan = parse_ok(
        "[[task]]\nid = \"t-{os}-{v}\"\nrun = \"x\"\nmatrix = { os = [\"linux\", \"macos\"], v = [1, 2], exclude = [{ os = \"macos\", v = 1 }], include = [{ os = \"windows\", v = 3 }] }\n",
    );
    assert_eq!(
        ids(&plan),
        ["t-linux-1", "t-linux-2", "t-macos-2", "t-windows-3"]
    );
}

#[test]
fn bad_include_and_exclude_entries_point_at_themselves() {
    let text = "[[task]]\nid = \"t-{os}\"\nrun = \"x\"\nmatrix = { os = [\"linux\"], include = [\"macos\", { os = 1.5 }], exclude = [{ sos = \"linux\" }, { os = \"bsd\" }] }\n";
    let e = parse_err(text);
    let at = |e: &PlanError| {
        e.span
            .map(|s| text[s.offset()..s.offset() + s.len()].to_string())
            .unwrap_or_default()
    };
    let found: Vec<(String, String)> = e.all().map(|e| (e.message.clone(), at(e))).collect();
    assert_eq!(
        found,
        [
            (
                "`include` entries are tables of matrix values".to_string(),
                "\"macos\"".to_string()
            ),
            (
                "matrix key `os` has a value that is not a string, integer or boolean".into(),
                "{ os = 1.5 }".into()
            ),
            (
                "`exclude` entry names `sos`, which is not a key of the matrix".into(),
                "{ sos = \"linux\" }".into()
            ),
            (
                "`exclude` entry matches no combination of the matrix".into(),
                "{ os = \"bsd\" }".into()
            ),
        ]
    );
}

#[test]
fn a_key_some_combinations_lack_is_an_error() {
    let e = parse_err(
        "[[task]]\nid = \"t-{os}-{arch}\"\nrun = \"x\"\nmatrix = { os = [\"linux\"], include = [{ os = \"macos\", arch = \"arm\" }] }\n",
    );
    assert_eq!(
        e.message,
        "task `t-{os}-{arch}`: `{arch}` in `id` has no value in the matrix's combinations"
    );
}

#[test]
fn a_verify_written_on_a_wasm_task_is_refused_one_from_defaults_is_not() {
    let e = parse_err("[[task]]\nid = \"w\"\nwasm = \"tool.wasm\"\nverify = \"true\"\n");
    insta::assert_snapshot!(e.message, @"task `w` sets `verify`, which WASM tasks do not run");
    parse_ok(
        "[defaults]\nverify = \"true\"\n\n[[task]]\nid = \"w\"\nwasm = \"tool.wasm\"\n\n[[task]]\nid = \"c\"\nrun = \"true\"\n",
    );
}

#[test]
fn models_get_their_providers_defaults_unless_the_plan_sets_them() {
    let plan = parse_ok(
        "[models.a]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\n\n\
         [models.o]\nprovider = \"openai\"\nmodel = \"gpt-4.1\"\n\n\
         [models.local]\nprovider = \"openai\"\nmodel = \"llama3.1:8b\"\n\
         base_url = \"http://localhost:11434/v1/\"\napi_key_env = \"\"\n\n\
         [[task]]\nid = \"t\"\nrun = \"true\"\n",
    );
    let model = |name: &str| {
        let m = &plan.models[name];
        (m.base_url.as_str(), m.api_key_env.as_deref())
    };
    assert_eq!(
        model("a"),
        ("https://api.anthropic.com", Some("ANTHROPIC_API_KEY"))
    );
    assert_eq!(
        model("o"),
        ("https://api.openai.com/v1", Some("OPENAI_API_KEY"))
    );
    assert_eq!(model("local"), ("http://localhost:11434/v1", None));
}

#[test]
fn variants_become_tasks_before_their_experiment_which_dependents_name() {
    let plan = parse_ok(
        "[[task]]\nid = \"base\"\nrun = \"true\"\ncreates = [\"b\"]\n\n\
         [[task]]\nid = \"opt-{os}\"\nmatrix = { os = [\"linux\", \"mac\"] }\ndeps = [\"base\"]\n\
         creates = [\"out-{os}\"]\nvariants = { level = [1, 9] }\n\
         run = \"zip -{level} {os} #{variant}\"\nscore = \"stat {os} {level}\"\npick = \"max\"\n\n\
         [[task]]\nid = \"after\"\ndeps = [\"opt-{os}\"]\nrun = \"true\"\n",
    );
    let ids: Vec<&str> = plan.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "base",
            "opt-linux@1",
            "opt-linux@2",
            "opt-linux",
            "opt-mac@1",
            "opt-mac@2",
            "opt-mac",
            "after"
        ]
    );
    let t = |id: &str| plan.tasks.iter().find(|t| t.id == id).unwrap();
    assert_eq!(t("opt-mac@2").command(), Some("zip -9 mac #2"));
    assert_eq!(t("opt-mac@2").deps, ["base"]);
    let v = t("opt-mac@2").variant().unwrap();
    assert_eq!((v.of.as_str(), v.number), ("opt-mac", 2));
    assert_eq!(v.values.get("level").map(String::as_str), Some("9"));
    assert_eq!(v.score.as_ref().unwrap().command, "stat mac 9");
    assert_eq!(t("opt-mac").deps, ["opt-mac@1", "opt-mac@2"]);
    let e = t("opt-mac").experiment().unwrap();
    assert_eq!((e.pick, e.scored), (super::Pick::Max, true));
    // A dep on the matrix template means the experiments, not variants.
    assert_eq!(t("after").deps, ["opt-linux", "opt-mac"]);
    // Without `score`, the first to pass verify wins.
    let first = parse_ok("[[task]]\nid = \"e\"\nrun = \"true\"\nvariants = 2\n");
    assert_eq!(
        first.tasks[2].experiment().unwrap().pick,
        super::Pick::First
    );
}

#[test]
fn variant_models_and_temperatures_set_the_agents() {
    let plan = parse_ok(
        "[models.a]\nprovider = \"anthropic\"\nmodel = \"m1\"\napi_key_env = \"\"\nbase_url = \"http://localhost:1\"\n\n\
         [models.b]\nprovider = \"anthropic\"\nmodel = \"m2\"\napi_key_env = \"\"\nbase_url = \"http://localhost:1\"\n\n\
         [[task]]\nid = \"e\"\nprompt = \"do {model}\"\nverify = \"true\"\n\
         variants = { model = [\"a\", \"b\"], temperature = [0.5] }\n",
    );
    let agent = |i: usize| plan.tasks[i].agent().unwrap().clone();
    assert_eq!(
        (
            agent(0).model.as_str(),
            agent(0).temperature,
            agent(0).prompt.as_str()
        ),
        ("a", Some(0.5), "do a")
    );
    assert_eq!(agent(1).model, "b");
    let bad = parse_err(
        "[[task]]\nid = \"e\"\nprompt = \"x\"\nvariants = { model = [\"nope\", \"x\"] }\n",
    );
    insta::assert_snapshot!(messages(&bad).join("\n"), @"
    task `e` uses model `nope`, which the plan does not define
    task `e` uses model `x`, which the plan does not define
    ");
}

#[test]
fn the_executor_table_is_read_and_checked() {
    let plan = parse_ok("[[task]]\nid = \"a\"\nrun = \"x\"\n");
    assert_eq!(plan.executor, Executor::Local);
    let plan = parse_ok(
        "[executor]\nkind = \"slurm\"\nrepo = \"/shared/s.git\"\npartition = \"batch\"\ntime_limit = \"1:00:00\"\nmem = \"4G\"\ncpus_per_task = 2\nextra_args = [\"--constraint=ssd\"]\npoll_interval = \"250ms\"\nmax_jobs = 50\n\n[[task]]\nid = \"a\"\nrun = \"x\"\n",
    );
    let Executor::Slurm(c) = &plan.executor else {
        panic!("not slurm: {:?}", plan.executor);
    };
    assert_eq!(c.repo.as_deref(), Some("/shared/s.git"));
    assert_eq!(c.partition.as_deref(), Some("batch"));
    assert_eq!(c.time_limit.as_deref(), Some("1:00:00"));
    assert_eq!(c.mem.as_deref(), Some("4G"));
    assert_eq!(c.cpus_per_task, Some(2));
    assert_eq!(c.extra_args, ["--constraint=ssd"]);
    assert_eq!(c.poll_interval, Duration::from_millis(250));
    assert_eq!(c.max_jobs, 50);
    assert_eq!(
        (c.tasks_per_job, c.pack_under),
        (1, Duration::from_secs(60))
    );
    let plan = parse_ok(
        "[executor]\nkind = \"slurm\"\ntasks_per_job = 20\npack_under = \"30s\"\n\n[[task]]\nid = \"a\"\nrun = \"x\"\n",
    );
    let Executor::Slurm(c) = &plan.executor else {
        panic!("not slurm: {:?}", plan.executor);
    };
    assert_eq!(
        (c.tasks_per_job, c.pack_under),
        (20, Duration::from_secs(30))
    );
    let mut helps = Vec::new();
    for bad in ["0", "1001", "-3"] {
        let e = parse_err(&format!(
            "[executor]\nkind = \"slurm\"\ntasks_per_job = {bad}\n\n[[task]]\nid = \"a\"\nrun = \"x\"\n"
        ));
        assert_eq!(e.message, format!("invalid tasks_per_job `{bad}`"));
        helps.push(e.help.unwrap_or_default());
    }
    // The same help for each.
    helps.dedup();
    insta::assert_snapshot!(helps.join("\n"), @"write how many attempts may share one job: 1 (a job each) to 1000");
    let e = parse_err(
        "[executor]\nkind = \"slurm\"\npack_under = \"soon\"\n\n[[task]]\nid = \"a\"\nrun = \"x\"\n",
    );
    assert_eq!(e.message, "invalid pack_under `soon`");
    let e = parse_err("[executor]\ntasks_per_job = 4\n\n[[task]]\nid = \"a\"\nrun = \"x\"\n");
    insta::assert_snapshot!(shown(&e), @r#"
    × [executor] sets `tasks_per_job` but its kind is local
    help: add kind = "slurm" to [executor], or remove those keys
    "#);

    let e = parse_err(
        "[executor]\nkind = \"slurm\"\ntime_limit = \"1h\"\nmem = \"4GB\"\n\n[[task]]\nid = \"a\"\nrun = \"x\"\n",
    );
    insta::assert_snapshot!(shown(&e), @r#"
     × invalid time_limit `1h`
      ╭─[plans/test.toml:3:14]
    2 │ kind = "slurm"
    3 │ time_limit = "1h"
      ·              ──┬─
      ·                ╰── not a Slurm time
    4 │ mem = "4GB"
      ╰────
     help: write minutes (`30`), `H:MM:SS` or `D-HH:MM:SS`, as sbatch --time takes

     × invalid mem `4GB`
      ╭─[plans/test.toml:4:7]
    3 │ time_limit = "1h"
    4 │ mem = "4GB"
      ·       ──┬──
      ·         ╰── not a Slurm size
    5 │ 
      ╰────
     help: write a number with an optional unit K, M, G or T, as sbatch --mem takes (`4G`)
    "#);
    let e = parse_err("[executor]\npartition = \"batch\"\n\n[[task]]\nid = \"a\"\nrun = \"x\"\n");
    insta::assert_snapshot!(shown(&e), @r#"
    × [executor] sets `partition` but its kind is local
    help: add kind = "slurm" to [executor], or remove those keys
    "#);
    let e = parse_err("[executor]\nkind = \"kubernetes\"\n\n[[task]]\nid = \"a\"\nrun = \"x\"\n");
    insta::assert_snapshot!(shown(&e), @r#"
     × unknown variant `kubernetes`, expected `local` or `slurm`
      ╭─[plans/test.toml:2:8]
    1 │ [executor]
    2 │ kind = "kubernetes"
      ·        ──────┬─────
      ·              ╰── unknown value
    3 │ 
      ╰────
     help: expected one of: `local`, `slurm`
    "#);
}

#[test]
fn growth_limits_and_replan_are_read_and_checked() {
    let plan = parse_ok("[[task]]\nid = \"a\"\nrun = \"true\"\n");
    assert_eq!(plan.subtask_limits, subtasks::Limits::default());
    assert_eq!(plan.replan.rounds, 0);
    let plan = parse_ok(
        "[swarm]\nmax_depth = 1\nmax_children = 3\nmax_tasks = 7\nreplan = 2\nreplan_model = \"fixer\"\n\n[models.fixer]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n",
    );
    assert_eq!(
        plan.subtask_limits,
        subtasks::Limits {
            max_depth: 1,
            max_children: 3,
            max_tasks: 7
        }
    );
    assert_eq!(
        (plan.replan.rounds, plan.replan.model.as_str()),
        (2, "fixer")
    );
    let e = parse_err("[swarm]\nreplan = 1\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n");
    assert_eq!(
        e.message,
        "`replan` asks model `default`, which [models] does not define"
    );
    insta::assert_snapshot!(e.help.unwrap_or_default(), @"add a [models.default] table (provider, model, api_key_env), or set `replan_model` to one that exists");
    let e = parse_err("[swarm]\nmax_children = 0\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n");
    assert_eq!(e.message, "max_children must be at least 1");
    assert_eq!(
        e.help.as_deref(),
        Some("to turn subtasks off, set `max_depth = 0`")
    );
}

#[test]
fn a_subtask_request_reads_like_a_plan_with_the_plans_defaults() {
    let plan = parse_ok(
        "[defaults]\ntimeout = \"9s\"\n\n[[task]]\nid = \"p\"\npaths = [\"src\"]\nrun = \"true\"\n",
    );
    let parent = &plan.tasks[0];
    let request = Source::new(
        Path::new("req.toml"),
        "[[task]]\nid = \"a\"\nrun = \"x\"\npaths = [\"src/a\"]\n\n[[task]]\nid = \"b\"\ndeps = [\"a\"]\nrun = \"y\"\n".into(),
    );
    let children =
        subtasks::resolve(&plan, parent, &request, &|_| true, &Default::default()).unwrap();
    assert_eq!(children[0].id, "p/a");
    assert_eq!(children[1].deps, ["p/a"]);
    // Without paths of its own, a child writes what its parent may.
    assert_eq!(children[1].paths, ["src"]);
    assert_eq!(children[0].timeout, Some(Duration::from_secs(9)));
    let bad = Source::new(
        Path::new("req.toml"),
        "[[task]]\nid = \"a\"\nrun = \"x\"\npaths = [\"docs\"]\nvariants = 2\n".into(),
    );
    let e = subtasks::resolve(&plan, parent, &bad, &|_| true, &Default::default()).unwrap_err();
    let lines = subtasks::messages(&e, &bad);
    assert_eq!(
        lines,
        [
            "req.toml:5:12: a subtask cannot have `variants` (experiments are planned up front: remove `variants`, `score`, `score_timeout` and `pick`)"
        ]
    );
    assert_eq!(subtasks::flat("p/a/b"), "p+a+b");
    assert_eq!(subtasks::parent_of("p/a/b"), Some("p/a"));
    assert_eq!(subtasks::depth("p/a/b"), 2);
}

/// `network` is a word or a list of hosts; each entry is checked where it
/// stands, `[defaults]`' list is every task's, and an agent may have a
/// list (not `full`).
#[test]
fn a_network_list_is_read_checked_and_inherited() {
    let plan = parse_ok(
        "[defaults]\nnetwork = [\"crates.io\", \"*.crates.io\"]\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n\n[[task]]\nid = \"b\"\nrun = \"true\"\nnetwork = [\"127.0.0.2:8000\", \"Example.COM\"]\n\n[[task]]\nid = \"c\"\nrun = \"true\"\nnetwork = \"none\"\n",
    );
    let shown: Vec<String> = plan.tasks.iter().map(|t| t.network.to_string()).collect();
    assert_eq!(
        shown,
        [
            "[\"crates.io\", \"*.crates.io\"]",
            "[\"127.0.0.2:8000\", \"example.com\"]",
            "\"none\"",
        ]
    );
    let text = "[[task]]\nid = \"a\"\nrun = \"true\"\nnetwork = [\"ok.example\", \"https://crates.io/x\", \"127.1:80\"]\n\n[[task]]\nid = \"b\"\nrun = \"true\"\nnetwork = []\n";
    let e = parse_err(text);
    assert_eq!(
        messages(&e),
        [
            "task `a`: network entry `https://crates.io/x` is a URL, not a host: write the host (and port, if it is not 80 or 443), e.g. \"crates.io\"",
            "task `a`: network entry `127.1:80` is neither a host name (whose last part is not a number) nor an IP address: write an IPv4 address as four numbers, `127.0.0.1`",
            "task `b` has network = [], which allows nothing",
        ]
    );
    // Each entry's error points at the entry.
    let at: Vec<&str> = e
        .all()
        .take(2)
        .map(|e| {
            let span = e.span.unwrap();
            &text[span.offset()..span.offset() + span.len()]
        })
        .collect();
    assert_eq!(at, ["\"https://crates.io/x\"", "\"127.1:80\""]);
    let e = parse_err("[[task]]\nid = \"a\"\nrun = \"true\"\nnetwork = \"some\"\n");
    insta::assert_snapshot!(messages(&e)[0], @"unknown variant `some`, expected `none` or `full`");
    // An agent may reach the hosts of a list; `full` stays refused.
    let models = "[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\n\n";
    let plan = parse_ok(&format!(
        "{models}[[task]]\nid = \"g\"\nprompt = \"go\"\nnetwork = [\"docs.rs\"]\n"
    ));
    assert_eq!(plan.tasks[0].network.to_string(), "[\"docs.rs\"]");
    let e = parse_err(&format!(
        "{models}[[task]]\nid = \"g\"\nprompt = \"go\"\nnetwork = \"full\"\n"
    ));
    assert_eq!(
        messages(&e),
        ["task `g` is an agent task with network = \"full\""]
    );
}

/// A subtask's network list lies within its parent's, host by host and
/// port by port: `none` < a list < `full`; left out, it is the parent's.
#[test]
fn a_subtask_network_list_only_narrows_its_parents() {
    let plan = parse_ok(
        "[[task]]\nid = \"p\"\nrun = \"true\"\nnetwork = [\"*.crates.io\", \"127.0.0.2:8000\"]\n\n[[task]]\nid = \"q\"\nrun = \"true\"\n\n[[task]]\nid = \"f\"\nrun = \"true\"\nnetwork = \"full\"\n",
    );
    let (listed, nothing, full) = (&plan.tasks[0], &plan.tasks[1], &plan.tasks[2]);
    let ask = |parent: &Task, network: &str| {
        let request = Source::new(
            Path::new("req.toml"),
            format!("[[task]]\nid = \"a\"\nrun = \"x\"\nnetwork = {network}\n"),
        );
        subtasks::resolve(&plan, parent, &request, &|_| true, &Default::default())
            .map(|children| children[0].network.to_string())
            .map_err(|e| subtasks::messages(&e, &request).join("\n"))
    };
    assert_eq!(
        ask(listed, "[\"static.crates.io\", \"127.0.0.2:8000\"]").unwrap(),
        "[\"static.crates.io\", \"127.0.0.2:8000\"]"
    );
    assert_eq!(ask(listed, "\"none\"").unwrap(), "\"none\"");
    let refused: Vec<String> = [
        "[\"crates.io\"]",
        "[\"127.0.0.2\"]",
        "[\"127.0.0.3:8000\"]",
        "\"full\"",
    ]
    .into_iter()
    .map(|wider| ask(listed, wider).unwrap_err())
    .collect();
    insta::assert_snapshot!(refused.join("\n"), @r#"
    req.toml:2:6: subtask `a` asks for `network = ["crates.io"]`, more than its parent `p` may have (`network = ["*.crates.io", "127.0.0.2:8000"]`) (a subtask can only narrow what its parent may do: leave `network` out to inherit `["*.crates.io", "127.0.0.2:8000"]`, or ask for less)
    req.toml:2:6: subtask `a` asks for `network = ["127.0.0.2"]`, more than its parent `p` may have (`network = ["*.crates.io", "127.0.0.2:8000"]`) (a subtask can only narrow what its parent may do: leave `network` out to inherit `["*.crates.io", "127.0.0.2:8000"]`, or ask for less)
    req.toml:2:6: subtask `a` asks for `network = ["127.0.0.3:8000"]`, more than its parent `p` may have (`network = ["*.crates.io", "127.0.0.2:8000"]`) (a subtask can only narrow what its parent may do: leave `network` out to inherit `["*.crates.io", "127.0.0.2:8000"]`, or ask for less)
    req.toml:2:6: subtask `a` asks for `network = "full"`, more than its parent `p` may have (`network = ["*.crates.io", "127.0.0.2:8000"]`) (a subtask can only narrow what its parent may do: leave `network` out to inherit `["*.crates.io", "127.0.0.2:8000"]`, or ask for less)
    "#);
    let refused = ask(nothing, "[\"crates.io\"]").unwrap_err();
    insta::assert_snapshot!(refused, @r#"req.toml:2:6: subtask `a` asks for `network = ["crates.io"]`, more than its parent `q` may have (`network = "none"`) (a subtask can only narrow what its parent may do: leave `network` out to inherit `"none"`, or ask for less)"#);
    assert_eq!(ask(full, "[\"crates.io\"]").unwrap(), "[\"crates.io\"]");
    // Left out: the parent's list.
    let request = Source::new(
        Path::new("req.toml"),
        "[[task]]\nid = \"a\"\nrun = \"x\"\n".into(),
    );
    let children =
        subtasks::resolve(&plan, listed, &request, &|_| true, &Default::default()).unwrap();
    assert_eq!(children[0].network, listed.network);
}

/// Confinement never widens: a child asking for more than its parent may
/// have is refused, every key at once, each naming the parent's value; a
/// key it leaves out is its parent's, not the plan's `[defaults]`.
#[test]
fn a_subtask_can_only_narrow_what_its_parent_may_do() {
    let plan = parse_ok(
        "[defaults]\nnetwork = \"full\"\nmemory = \"8GiB\"\nretries = 3\n\n[[task]]\nid = \"p\"\nrun = \"true\"\nnetwork = \"none\"\nmemory = \"1GiB\"\nprocesses = 64\ntimeout = \"9s\"\nretries = 1\nmax_output = \"1MiB\"\n",
    );
    let parent = &plan.tasks[0];
    let wide = Source::new(
        Path::new("req.toml"),
        "[[task]]\nid = \"a\"\nrun = \"x\"\nnetwork = \"full\"\nmemory = \"2GiB\"\nprocesses = 100\ntimeout = \"1h\"\nretries = 2\nmax_output = \"2MiB\"\nmax_file_size = \"1GiB\"\n".into(),
    );
    let e = subtasks::resolve(&plan, parent, &wide, &|_| true, &Default::default()).unwrap_err();
    let lines = subtasks::messages(&e, &wide).join("\n");
    insta::assert_snapshot!(lines, @r#"
    req.toml:2:6: subtask `a` asks for `network = "full"`, more than its parent `p` may have (`network = "none"`) (a subtask can only narrow what its parent may do: leave `network` out to inherit `"none"`, or ask for less)
    req.toml:2:6: subtask `a` asks for `memory = "2GiB"`, more than its parent `p` may have (`memory = "1.0 GiB"`) (a subtask can only narrow what its parent may do: leave `memory` out to inherit `"1.0 GiB"`, or ask for less)
    req.toml:2:6: subtask `a` asks for `processes = 100`, more than its parent `p` may have (`processes = 64`) (a subtask can only narrow what its parent may do: leave `processes` out to inherit `64`, or ask for less)
    req.toml:2:6: subtask `a` asks for `timeout = "1h"`, more than its parent `p` may have (`timeout = "9s"`) (a subtask can only narrow what its parent may do: leave `timeout` out to inherit `"9s"`, or ask for less)
    req.toml:2:6: subtask `a` asks for `retries = 2`, more than its parent `p` may have (`retries = 1`) (a subtask can only narrow what its parent may do: leave `retries` out to inherit `1`, or ask for less)
    req.toml:2:6: subtask `a` asks for `max_output = "2MiB"`, more than its parent `p` may have (`max_output = "1.0 MiB"`) (a subtask can only narrow what its parent may do: leave `max_output` out to inherit `"1.0 MiB"`, or ask for less)
    req.toml:2:6: subtask `a` asks for `max_file_size = "1GiB"`, more than its parent `p` may have (`max_file_size = "100.0 MiB"`) (a subtask can only narrow what its parent may do: leave `max_file_size` out to inherit `"100.0 MiB"`, or ask for less)
    "#);
    // Left out: the parent's values, not [defaults]'.
    let quiet = Source::new(
        Path::new("req.toml"),
        "[[task]]\nid = \"a\"\nrun = \"x\"\n".into(),
    );
    let children =
        subtasks::resolve(&plan, parent, &quiet, &|_| true, &Default::default()).unwrap();
    let child = &children[0];
    assert_eq!(child.network, parent.network);
    assert_eq!(child.memory, Some(1 << 30));
    assert_eq!(child.processes, Some(64));
    assert_eq!(child.timeout, Some(Duration::from_secs(9)));
    assert_eq!(child.retries, 1);
    assert_eq!(child.max_output, 1 << 20);
    // Asking for less is fine.
    let narrow = Source::new(
        Path::new("req.toml"),
        "[[task]]\nid = \"a\"\nrun = \"x\"\nmemory = \"512MiB\"\ntimeout = \"5s\"\nretries = 0\n"
            .into(),
    );
    let children =
        subtasks::resolve(&plan, parent, &narrow, &|_| true, &Default::default()).unwrap();
    assert_eq!(children[0].memory, Some(512 << 20));
    assert_eq!(children[0].timeout, Some(Duration::from_secs(5)));
}

/// A read-only parent's children write nothing; a subtree's deadline is
/// passed on; a WASM child runs only a module the plan names; an agent
/// child's turns and budget stay under its agent parent's.
#[test]
fn a_subtask_inherits_isolation_deadline_modules_and_budget() {
    let plan = parse_ok(
        "[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\n\n[[task]]\nid = \"r\"\nrun = \"true\"\nisolation = \"readonly\"\n\n[[task]]\nid = \"g\"\nprompt = \"go\"\nmax_turns = 5\nbudget = { tokens = 1000 }\n",
    );
    let reader = &plan.tasks[0];
    let write = Source::new(
        Path::new("req.toml"),
        "[[task]]\nid = \"a\"\nrun = \"x\"\nisolation = \"worktree\"\n\n[[task]]\nid = \"w\"\nwasm = \"/etc/passwd\"\n".into(),
    );
    let deadline = std::time::SystemTime::now() + Duration::from_secs(30);
    let inherited = subtasks::Inherited {
        modules: Vec::new(),
        deadline: Some(deadline),
    };
    let e = subtasks::resolve(&plan, reader, &write, &|_| true, &inherited).unwrap_err();
    let lines = subtasks::messages(&e, &write).join("\n");
    insta::assert_snapshot!(lines, @r#"
    req.toml:2:6: subtask `a` asks for `isolation = "worktree"`, more than its parent `r` may have (`isolation = "readonly"`) (a subtask can only narrow what its parent may do: leave `isolation` out to inherit `"readonly"`, or ask for less)
    req.toml:8:8: subtask `w` asks to run the WASM module /etc/passwd, which none of the plan's own tasks runs (a subtask may run only a module the plan itself names (the person running swarm chose those files))
    "#);
    let quiet = Source::new(
        Path::new("req.toml"),
        "[[task]]\nid = \"a\"\nrun = \"x\"\n".into(),
    );
    let children = subtasks::resolve(&plan, reader, &quiet, &|_| true, &inherited).unwrap();
    assert_eq!(children[0].isolation, swarm_protocol::Isolation::Readonly);
    assert_eq!(children[0].not_after, Some(deadline));
    let agent = &plan.tasks[1];
    let greedy = Source::new(
        Path::new("req.toml"),
        "[[task]]\nid = \"a\"\nprompt = \"x\"\nmax_turns = 50\nbudget = { tokens = 5000 }\n".into(),
    );
    let e = subtasks::resolve(&plan, agent, &greedy, &|_| true, &inherited).unwrap_err();
    let lines = subtasks::messages(&e, &greedy).join("\n");
    insta::assert_snapshot!(lines, @"
    req.toml:2:6: subtask `a` asks for `max_turns = 50`, more than its parent `g` may have (`max_turns = 5`) (a subtask can only narrow what its parent may do: leave `max_turns` out to inherit `5`, or ask for less)
    req.toml:2:6: subtask `a` asks for `budget = { tokens = 5000 }`, more than its parent `g` may have (`budget = { tokens = 1000 }`) (a subtask can only narrow what its parent may do: leave `budget` out to inherit `{ tokens = 1000 }`, or ask for less)
    ");
    let asking = Source::new(
        Path::new("req.toml"),
        "[[task]]\nid = \"a\"\nprompt = \"x\"\n".into(),
    );
    let children = subtasks::resolve(&plan, agent, &asking, &|_| true, &inherited).unwrap();
    let Payload::Agent(own) = &children[0].payload else {
        panic!("not an agent: {:?}", children[0].payload)
    };
    assert_eq!(own.max_turns, 5);
    assert_eq!(own.budget.tokens, Some(1000));
}

#[test]
fn a_price_that_would_lower_spending_or_never_reach_a_budget_is_refused() {
    let model = |price: &str| {
        format!(
            "[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\nprice = {price}\n\n[[task]]\nid = \"g\"\nprompt = \"go\"\n"
        )
    };
    let refused: Vec<String> = [
        "{ input = 1.0, output = 2.0, cache_read = -0.1 }",
        "{ input = 1.0, output = 2.0, cache_write = nan }",
        "{ input = inf, output = 2.0 }",
        "{ input = -1.0, output = 2.0 }",
    ]
    .into_iter()
    .map(|bad| parse_err(&model(bad)).message)
    .collect();
    insta::assert_snapshot!(refused.join("\n"), @"
    model `default` has a negative or non-finite price
    model `default` has a negative or non-finite price
    model `default` has a negative or non-finite price
    model `default` has a negative or non-finite price
    ");
    // Cache prices left out are filled in as the provider bills them.
    let plan = parse_ok(&model("{ input = 2.0, output = 8.0 }"));
    let price = plan.models["default"].price.unwrap();
    assert_eq!(price.cache_read, Some(0.2));
    assert_eq!(price.cache_write, Some(2.5));
}

const MCP_PLAN: &str = "[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\n\n[mcp.files]\ncommand = [\"npx\", \"-y\", \"@modelcontextprotocol/server-filesystem\", \".\"]\nenv = { LOG = \"1\" }\n\n[mcp.web]\ncommand = [\"/opt/fetch/bin/fetch\"]\n\n";

#[test]
fn agent_tasks_name_the_plans_mcp_servers() {
    let plan = parse_ok(&format!(
        "{MCP_PLAN}[defaults]\nmcp = [\"files\"]\n\n[[task]]\nid = \"a\"\nprompt = \"go\"\n\n[[task]]\nid = \"b\"\nprompt = \"go\"\nmcp = [\"web\", \"files\", \"web\"]\n\n[[task]]\nid = \"c\"\nrun = \"true\"\n"
    ));
    assert_eq!(plan.mcp["files"].command[0], "npx");
    assert_eq!(plan.mcp["files"].env["LOG"], "1");
    let servers = |i: usize| plan.tasks[i].agent().map(|a| a.mcp.clone());
    assert_eq!(servers(0), Some(vec!["files".to_string()]));
    // Each once, in the task's order.
    assert_eq!(
        servers(1),
        Some(vec!["web".to_string(), "files".to_string()])
    );
    // `[defaults]` does not make a command task an MCP user.
    assert_eq!(servers(2), None);
}

#[test]
fn mcp_mistakes_are_refused_at_their_place_with_help() {
    let e = parse_err(&format!(
        "{MCP_PLAN}[[task]]\nid = \"a\"\nprompt = \"go\"\nmcp = [\"file\"]\n"
    ));
    assert_eq!(
        e.message,
        "task `a` uses MCP server `file`, which the plan does not have"
    );
    assert_eq!(e.help.as_deref(), Some("did you mean `files`?"));
    let e = parse_err(&format!(
        "{MCP_PLAN}[[task]]\nid = \"a\"\nrun = \"true\"\nmcp = [\"files\"]\n"
    ));
    assert_eq!(
        e.message,
        "task `a` sets `mcp`, which only agent (`prompt`) tasks take"
    );
    for (table, want) in [
        (
            "[mcp.Files]\ncommand = [\"x\"]\n",
            "MCP server name `Files` is not a short name",
        ),
        (
            "[mcp.a-very-long-server-name]\ncommand = [\"x\"]\n",
            "MCP server name `a-very-long-server-name` is not a short name",
        ),
        (
            "[mcp.x]\ncommand = []\n",
            "MCP server `x` has no program in `command`",
        ),
        (
            "[mcp.x]\ncommand = [\"bin/server\"]\n",
            "MCP server `x`'s program `bin/server` is a relative path",
        ),
    ] {
        let e = parse_err(&format!("{table}\n[[task]]\nid = \"a\"\nrun = \"true\"\n"));
        assert_eq!(e.message, want);
        assert!(e.help.is_some(), "{want}: no help");
    }
}

/// A subtask may use some of its agent parent's servers, never another
/// of the plan's; left out, it has its parent's.
#[test]
fn a_subtask_uses_only_its_parents_mcp_servers() {
    let plan = parse_ok(&format!(
        "{MCP_PLAN}[[task]]\nid = \"p\"\nprompt = \"go\"\nmcp = [\"files\"]\n\n[[task]]\nid = \"q\"\nrun = \"true\"\n"
    ));
    let (agent, command) = (&plan.tasks[0], &plan.tasks[1]);
    let wider = Source::new(
        Path::new("req.toml"),
        "[[task]]\nid = \"a\"\nprompt = \"x\"\nmcp = [\"files\", \"web\"]\n".into(),
    );
    let e = subtasks::resolve(&plan, agent, &wider, &|_| true, &Default::default()).unwrap_err();
    let lines = subtasks::messages(&e, &wider).join("\n");
    insta::assert_snapshot!(lines, @r#"req.toml:2:6: subtask `a` asks for `mcp = ["files", "web"]`, more than its parent `p` may have (`mcp = ["files"]`) (a subtask can only narrow what its parent may do: leave `mcp` out to inherit `["files"]`, or ask for less)"#);
    let e = subtasks::resolve(&plan, command, &wider, &|_| true, &Default::default()).unwrap_err();
    let lines = subtasks::messages(&e, &wider).join("\n");
    insta::assert_snapshot!(lines, @r#"req.toml:2:6: subtask `a` asks for `mcp = ["files", "web"]`, more than its parent `q` may have (`mcp = []`) (a subtask can only narrow what its parent may do: leave `mcp` out to inherit `[]`, or ask for less)"#);
    let quiet = Source::new(
        Path::new("req.toml"),
        "[[task]]\nid = \"a\"\nprompt = \"x\"\n".into(),
    );
    let children = subtasks::resolve(&plan, agent, &quiet, &|_| true, &Default::default()).unwrap();
    assert_eq!(
        children[0].agent().map(|a| a.mcp.clone()),
        Some(vec!["files".to_string()])
    );
    let children =
        subtasks::resolve(&plan, command, &quiet, &|_| true, &Default::default()).unwrap();
    assert_eq!(children[0].agent().map(|a| a.mcp.len()), Some(0));
}

#[test]
fn a_combinations_values_stay_sorted_by_key_and_a_key_set_again_is_replaced() {
    let mut values = matrix::Values::default();
    values.insert("os".into(), "linux".into());
    values.insert("arch".into(), "x86".into());
    values.extend([("b".into(), "1".into()), ("os".into(), "mac".into())]);
    let keys: Vec<&str> = values.keys().map(String::as_str).collect();
    assert_eq!(keys, ["arch", "b", "os"]);
    assert_eq!(values.get("os").map(String::as_str), Some("mac"));
    assert_eq!(values.get("osx"), None);
    assert!(values.contains_key("arch") && !values.contains_key("a"));
    // Placeholders are substituted in key order, as with a BTreeMap.
    assert_eq!(matrix::substitute("{arch}-{os}:{b}", &values), "x86-mac:1");
}

#[test]
fn a_plan_without_its_tasks_keeps_every_setting() {
    let plan = parse_ok(
        "[swarm]\nname = \"n\"\nconcurrency = 3\nmax_depth = 1\n\n[[task]]\nid = \"a\"\nrun = \"x\"\n",
    );
    let settings = plan.without_tasks();
    assert!(settings.tasks.is_empty());
    assert_eq!(
        format!(
            "{:?}",
            Plan {
                tasks: plan.tasks.clone(),
                ..settings
            }
        ),
        format!("{plan:?}")
    );
}

/// A wrong value is said in swarm's words, naming the key, beside the
/// table's other mistakes (issue 63).
#[test]
fn a_wrong_value_names_its_key_in_swarms_words_and_other_errors_still_come() {
    let text = "[[task]]\nid = \"a\"\nrun = \"true\"\nretries = -1\ntimout = \"5s\"\n";
    let error = parse(Path::new("plans/v.toml"), text.to_string()).unwrap_err();
    let all: Vec<String> = error.all().map(|e| e.to_string()).collect();
    assert_eq!(
        all,
        [
            "`retries` must be a whole number from 0 up, not integer `-1`",
            "unknown key `timout` in [[task]]",
        ]
    );
}

/// A subtask's worktree is never kept warm: a request asking for it is
/// refused, and a child that says nothing gets none (issue 62).
#[test]
fn a_subtask_is_never_warm() {
    let plan = parse_ok("[[task]]\nid = \"p\"\nrun = \"true\"\n");
    let parent = &plan.tasks[0];
    assert!(parent.warm_by_default(1));
    let request = Source::new(
        Path::new("req.toml"),
        "[[task]]\nid = \"a\"\nrun = \"x\"\n".into(),
    );
    let children =
        subtasks::resolve(&plan, parent, &request, &|_| true, &Default::default()).unwrap();
    assert_eq!(children[0].warm, Some(false));
    let warm = Source::new(
        Path::new("req.toml"),
        "[[task]]\nid = \"a\"\nrun = \"x\"\nwarm = true\n".into(),
    );
    let e = subtasks::resolve(&plan, parent, &warm, &|_| true, &Default::default()).unwrap_err();
    let lines = subtasks::messages(&e, &warm).join("\n");
    insta::assert_snapshot!(lines, @"req.toml:2:6: subtask `a` asks for `warm = true`, more than its parent `p` may have (`warm = false (a subtask's worktree is never kept warm)`) (a subtask can only narrow what its parent may do: leave `warm` out to inherit `false (a subtask's worktree is never kept warm)`, or ask for less)");
}

/// An untrusted plan's tasks never keep their worktrees, whatever they say
/// (issue 62).
#[test]
fn an_untrusted_plans_tasks_are_never_warm() {
    let text = "[[task]]\nid = \"a\"\nrun = \"true\"\nwarm = true\n";
    for origin in [origin::Origin::Repository, origin::Origin::Mcp] {
        let plan = parse_with(
            Path::new("swarm.toml"),
            text.to_string(),
            origin,
            origin::files::Files::beside(Path::new("swarm.toml")),
        )
        .unwrap();
        assert_eq!(plan.tasks[0].warm, Some(false), "{origin:?}");
    }
    let mine = parse_ok(text);
    assert_eq!(mine.tasks[0].warm, Some(true));
}
