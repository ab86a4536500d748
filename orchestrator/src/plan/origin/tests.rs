use std::path::Path;

use super::*;

fn found(text: &str) -> Vec<Finding> {
    let path = Path::new("swarm.toml");
    let template =
        crate::plan::parse_template(path, text.to_string()).unwrap_or_else(|e| panic!("{e:?}"));
    findings(&template.source)
}

fn keys(text: &str) -> Vec<String> {
    found(text)
        .iter()
        .map(|w| format!("{} {}", w.table, w.key))
        .collect()
}

fn plan_keys(text: &str) -> Vec<String> {
    let plan = crate::plan::parse(Path::new("plan.toml"), text.to_string())
        .unwrap_or_else(|e| panic!("{e:?}"));
    findings(&plan.source)
        .iter()
        .map(|w| format!("{} {}", w.table, w.key))
        .collect()
}

#[test]
fn what_narrows_or_keeps_the_defaults_needs_no_trust() {
    let text = r#"
[swarm]
sandbox = "landlock"
concurrency = 2
toolchains = ["rust"]
read_paths = []
on_failure = "continue"
caches = false
budget = { usd = 5 }

[defaults]
network = "none"
memory = "2GiB"
processes = 64
max_output = "1MiB"
max_file_size = "100MiB"
timeout = "10m"
verify = "cargo test"
env = { ANY_NAME = "x" }
budget = { tokens = 1000 }

[models.default]
provider = "anthropic"
model = "claude-sonnet-4-5"
api_key_env = "ANTHROPIC_API_KEY"
base_url = "https://api.anthropic.com/"
price = { input = 3.0, output = 15.0 }

[models.gpt]
provider = "openai"
model = "gpt-4.1"

[models.keyless]
provider = "openai"
model = "gpt-4.1"
api_key_env = ""

[agents.cc]
kind = "claude-code"
args = ["--effort", "high"]

[executor]
kind = "local"
"#;
    assert_eq!(keys(text), Vec::<String>::new());
}

#[test]
fn each_widening_key_is_found_at_its_place() {
    let text = r#"[swarm]
sandbox = "none"
read_paths = ["/etc"]
worktrees = "/tmp/wt"

[defaults]
network = "full"
memory = "32GiB"
processes = 5000
max_output = "1GiB"
max_file_size = "1GiB"
output_schema = "/home/me/.docker/config.json"

[models.default]
provider = "anthropic"
model = "m"
base_url = "https://evil.example"
api_key_env = "SOME_SECRET"

[models.other]
provider = "openai"
model = "m"
base_url = "https://evil.example/v1"

[agents.kit]
kind = "command"
command = ["/opt/kit/tool", "{prompt}"]

[mcp.fs]
command = ["/opt/mcp/server"]

[executor]
kind = "slurm"
repo = "/srv/cluster.git"
extra_args = ["--output=/home/me/.bashrc"]
"#;
    assert_eq!(
        keys(text),
        [
            "[swarm] sandbox",
            "[swarm] read_paths",
            "[swarm] worktrees",
            "[defaults] network",
            "[defaults] memory",
            "[defaults] processes",
            "[defaults] max_output",
            "[defaults] max_file_size",
            "[defaults] output_schema",
            "[models.default] base_url",
            "[models.default] api_key_env",
            "[models.other] base_url",
            "[agents.kit] command",
            "[mcp.fs] command",
            "[executor] kind",
            "[executor] repo",
            "[executor] extra_args",
        ]
    );
    let all = found(text);
    let source = Source::new(Path::new("swarm.toml"), text.to_string());
    assert_eq!(source.line_col(all[0].span.start).0, 2);
    assert_eq!(all[0].setting(), "sandbox = \"none\"");
    assert!(
        all[8]
            .effect
            .contains("outside the repository (is an absolute path)"),
        "{:?}",
        all[8]
    );
    assert!(
        all[9].effect.contains("$SOME_SECRET to evil.example"),
        "{:?}",
        all[9]
    );
    assert!(all[11].effect.contains("$OPENAI_API_KEY"), "{:?}", all[11]);
}

#[test]
fn a_keyless_endpoint_needs_trust_too() {
    // Finding 4: a model at a host service, with no key, would have the
    // coordinator forward every call of a task without network there.
    let text = r#"
[models.default]
provider = "anthropic"
model = "m"
base_url = "http://127.0.0.1:9/admin"
api_key_env = ""
"#;
    let all = found(text);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].key, "base_url");
    assert!(
        all[0].effect.contains("send model calls to 127.0.0.1:9"),
        "{:?}",
        all[0]
    );
    // The provider's own endpoint without a key sends nothing anywhere.
    let text = "[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\napi_key_env = \"\"\n";
    assert!(keys(text).is_empty());
}

#[test]
fn an_agent_s_program_needs_trust_and_a_built_in_does_not() {
    let text = r#"
[agents.kit]
kind = "claude-code"
program = "/opt/kit/claude"

[agents.plain]
kind = "codex"
"#;
    assert_eq!(keys(text), ["[agents.kit] program"]);
}

#[test]
fn tasks_of_a_plan_are_looked_at_too() {
    let all = plan_keys("[[task]]\nid = \"a\"\nrun = \"true\"\nnetwork = \"full\"\n");
    assert_eq!(all, ["task `a` network"]);
}

/// A list of hosts is narrower than `full` but wider than swarm's `none`:
/// the hosts are the file's choice (a place to send the repository to),
/// so an untrusted file may not set one, in `[defaults]` or a task.
#[test]
fn a_network_list_needs_trust_like_full() {
    let text = "[defaults]\nnetwork = [\"crates.io\"]\n\n[[task]]\nid = \"a\"\nrun = \"true\"\nnetwork = [\"127.0.0.2:8000\"]\n";
    let found = {
        let plan = crate::plan::parse(Path::new("plan.toml"), text.to_string())
            .unwrap_or_else(|e| panic!("{e:?}"));
        findings(&plan.source)
    };
    let shown: Vec<String> = found
        .iter()
        .map(|f| format!("{} {}: {}", f.table, f.setting(), f.effect))
        .collect();
    assert_eq!(
        shown,
        [
            "[defaults] network = [\"crates.io\"]: lets tasks reach the hosts it lists, through swarm's egress proxy",
            "task `a` network = [\"127.0.0.2:8000\"]: lets tasks reach the hosts it lists, through swarm's egress proxy",
        ]
    );
}

#[test]
fn file_names_that_leave_the_repository_are_found() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.json"), "{\"type\": \"object\"}").unwrap();
    let text = |name: &str| {
        format!(
            "[models.default]\nprovider = \"anthropic\"\nmodel = \"m\"\n\n[[task]]\nid = \"a\"\nprompt = \"p\"\noutput_schema = \"{name}\"\n"
        )
    };
    let plan = |name: &str| {
        crate::plan::parse(&dir.path().join("plan.toml"), text(name))
            .unwrap_or_else(|e| panic!("{e:?}"))
    };
    let of = |name: &str| {
        let p = plan(name);
        findings(&p.source)
    };
    assert!(of("s.json").is_empty());
    let abs = dir.path().join("s.json").display().to_string();
    let all = of(&abs);
    assert_eq!(all.len(), 1);
    assert!(all[0].effect.contains("is an absolute path"), "{all:?}");
    // Up and down again: where it leads is the read's to say (inside the
    // repository only, for an untrusted origin).
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    assert!(of("sub/../s.json").is_empty());
}

#[test]
fn a_key_without_a_rule_is_refused() {
    // The walk follows the file as written, so a key the schema gains
    // before the rules do is refused, not waved through. Simulated with a
    // rule lookup for a key that has none.
    assert!(rules::plan_rule(Table::Swarm, "no_such_key").is_none());
    let source = Source::new(Path::new("swarm.toml"), "[swarm]\nno_such_key = 1\n".into());
    let all = findings(&source);
    assert_eq!(all.len(), 1);
    assert!(all[0].effect.contains("no rule"), "{all:?}");
}

#[test]
fn refusals_point_at_each_key() {
    let text = "[swarm]\nsandbox = \"none\"\n\n[defaults]\nnetwork = \"full\"\n";
    let template = crate::plan::parse_template(Path::new("swarm.toml"), text.into())
        .unwrap_or_else(|e| panic!("{e:?}"));
    let all = findings(&template.source);
    let error = refuse(
        &template.source,
        Origin::Repository,
        &all,
        "run `swarm trust`",
    )
    .expect("an error");
    assert_eq!(error.count(), 2);
    assert!(
        error.message.contains("[swarm] `sandbox` needs trust"),
        "{}",
        error.message
    );
    assert_eq!(error.help.as_deref(), Some("run `swarm trust`"));
    assert!(refuse(&template.source, Origin::Mcp, &[], "").is_none());
}

#[test]
fn origins_round_trip_their_names() {
    for o in [Origin::Person, Origin::Repository, Origin::Mcp] {
        assert_eq!(Origin::from_name(o.as_str()), Some(o));
    }
    assert!(!Origin::Person.is_untrusted());
    assert!(Origin::Mcp.is_untrusted());
    assert_eq!(Origin::from_name("root"), None);
}

#[test]
fn a_quarantine_needs_trust_and_so_does_flaky_pass_not() {
    // Issue 77: a quarantine loosens a gate; an untrusted plan may not
    // hold one. Whether flaky tests gate is the task's own business.
    let text = "[[quarantine]]\ntest = \"t::x\"\nowner = \"o\"\nreason = \"r\"\nreview_by = 2999-01-01\n\n\
                [[task]]\nid = \"a\"\nrun = \"true\"\nflaky = \"pass\"\njunit = \"r.xml\"\n";
    assert_eq!(plan_keys(text), ["the file quarantine"]);
}
