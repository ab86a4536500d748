//! Tests of whole maps: real repositories made in temporary directories
//! (the git CLI for the snapshot's fixture, libgit2 for large trees), and
//! the budget on synthetic listings.

use std::path::Path;
use std::process::Command;

use git2::{IndexEntry, IndexTime, Oid, Repository};

use super::commands::Commands;
use super::goal::Hits;
use super::packages::Packages;
use super::read::{File, Text};
use super::render::{Parts, fit};
use super::*;
use crate::git::Repo;

/// Runs git in `dir` with no user or system configuration and fixed
/// identities and dates, so that commits are the same on every machine.
fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("HOME", dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A repository with a Cargo workspace of three crates (path and workspace
/// dependencies between them), an npm workspace of two packages (one
/// depending on the other), AGENTS.md, and `TaskGraph` in a few files.
fn fixture() -> (tempfile::TempDir, Repo) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    let files: &[(&str, &str)] = &[
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"crates/*\"]\nresolver = \"3\"\n\n\
             [workspace.dependencies]\ndemo-core = { path = \"crates/core\" }\nserde_json = \"1\"\n",
        ),
        (
            "crates/core/Cargo.toml",
            "[package]\nname = \"demo-core\"\nversion = \"0.1.0\"\n\n\
             [dependencies]\nserde_json.workspace = true\n",
        ),
        (
            "crates/core/src/lib.rs",
            "pub mod graph;\npub use graph::TaskGraph;\n",
        ),
        (
            "crates/core/src/graph.rs",
            "/// Tasks and their dependencies.\npub struct TaskGraph {\n    tasks: Vec<String>,\n}\n\n\
             impl TaskGraph {\n    pub fn new() -> TaskGraph {\n        TaskGraph { tasks: Vec::new() }\n    }\n}\n",
        ),
        (
            "crates/cli/Cargo.toml",
            "[package]\nname = \"demo-cli\"\nversion = \"0.1.0\"\n\n\
             [dependencies]\ndemo-core = { path = \"../core\" }\nclap = \"4\"\n",
        ),
        (
            "crates/cli/src/main.rs",
            "use demo_core::TaskGraph;\n\nfn main() {\n    let _graph = TaskGraph::new();\n}\n",
        ),
        (
            "crates/server/Cargo.toml",
            "[package]\nname = \"demo-server\"\nversion = \"0.1.0\"\n\n\
             [dependencies]\ndemo-core.workspace = true\n\n[dev-dependencies]\ndemo-cli = { path = \"../cli\" }\n",
        ),
        ("crates/server/src/lib.rs", "//! Serves the graph.\n"),
        (
            "package.json",
            "{\n  \"name\": \"demo\",\n  \"private\": true,\n  \"workspaces\": [\"web/*\"],\n  \
             \"scripts\": { \"test\": \"npm test --workspaces\", \"build\": \"npm run build --workspaces\" }\n}\n",
        ),
        (
            "web/model/package.json",
            "{ \"name\": \"@demo/model\", \"version\": \"1.0.0\" }\n",
        ),
        (
            "web/model/src/index.ts",
            "export interface TaskGraph {\n  tasks: string[];\n}\n",
        ),
        (
            "web/ui/package.json",
            "{\n  \"name\": \"@demo/ui\",\n  \"version\": \"1.0.0\",\n  \
             \"dependencies\": { \"@demo/model\": \"^1.0.0\", \"react\": \"^18.0.0\" }\n}\n",
        ),
        (
            "web/ui/src/App.tsx",
            "import type { TaskGraph } from \"@demo/model\";\n\nexport function App(props: { graph: TaskGraph }) {\n  return null;\n}\n",
        ),
        (
            "AGENTS.md",
            "# Working on demo\n\n- Run `cargo test` and `npm test` before you finish.\n- Keep the core crate free of I/O.\n",
        ),
        (
            "README.md",
            "# demo\n\nA task graph, in Rust and TypeScript.\n",
        ),
        (
            "docs/design.md",
            "The TaskGraph holds tasks.\nTaskGraph is built once.\n",
        ),
    ];
    for (path, text) in files {
        write(root, path, text);
    }
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "fixture"]);
    let repo = Repo::discover(root).unwrap();
    (dir, repo)
}

fn options(goal: &str, budget: usize) -> MapOptions {
    MapOptions {
        token_budget: budget,
        goal: goal.into(),
    }
}

const GOAL: &str = "Make TaskGraph serializable with serde_json and show it in the web UI";

#[test]
fn snapshot_of_a_cargo_and_npm_workspace() {
    let (_dir, repo) = fixture();
    let head = repo.resolve("HEAD").unwrap();
    let map = build(&repo, head, &options(GOAL, DEFAULT_TOKEN_BUDGET)).unwrap();
    insta::assert_snapshot!("fixture_map", map.text);
    assert_eq!(map.files, 16);
    assert_eq!(map.tokens, estimate_tokens(&map.text));
    assert!(map.tokens <= DEFAULT_TOKEN_BUDGET);
    assert_eq!(map.test_command.as_deref(), Some("cargo test"));
    assert_eq!(map.build_command.as_deref(), Some("cargo build"));
    assert_eq!(
        map.hash,
        Oid::hash_object(git2::ObjectType::Blob, map.text.as_bytes())
            .unwrap()
            .to_string()
    );
    // The same commit, goal and budget give the same map.
    let again = build(&repo, head, &options(GOAL, DEFAULT_TOKEN_BUDGET)).unwrap();
    assert_eq!(again, map);
}

#[test]
fn the_map_is_of_the_commit_not_the_working_tree() {
    let (dir, repo) = fixture();
    let first = repo.resolve("HEAD").unwrap();
    let before = build(&repo, first, &options(GOAL, DEFAULT_TOKEN_BUDGET)).unwrap();
    write(dir.path(), "AGENTS.md", "uncommitted instructions\n");
    write(dir.path(), "untracked/TaskGraph.rs", "TaskGraph\n");
    let after = build(&repo, first, &options(GOAL, DEFAULT_TOKEN_BUDGET)).unwrap();
    assert_eq!(after, before);

    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "more"]);
    let second = repo.resolve("HEAD").unwrap();
    let later = build(&repo, second, &options(GOAL, DEFAULT_TOKEN_BUDGET)).unwrap();
    assert_eq!(later.files, before.files + 1);
    insta::assert_snapshot!(later.text, @"
    # Repository map

    17 files, 1.4 KiB, tracked at this commit.

    ## Packages

    `a -> b, c`: a depends on b and c.
    Cargo workspace Cargo.toml with 3 crates:
    - demo-cli (crates/cli) -> demo-core
    - demo-core (crates/core)
    - demo-server (crates/server) -> demo-cli, demo-core
    npm workspace package.json with 2 packages:
    - @demo/model (web/model)
    - @demo/ui (web/ui) -> @demo/model

    ## Instructions (AGENTS.md)

    uncommitted instructions

    ## Commands

    - test: `cargo test` (Cargo.toml)
    - other test commands: `npm test` (package.json)
    - build: `cargo build` (Cargo.toml)
    - other build commands: `npm run build` (package.json)

    ## Goal identifiers

    `TaskGraph`: 13 lines in 7 files
    - crates/core/src/graph.rs: 4 lines
    - crates/cli/src/main.rs: 2 lines
    - docs/design.md: 2 lines
    - web/ui/src/App.tsx: 2 lines
    - crates/core/src/lib.rs: 1 line
    - untracked/TaskGraph.rs: 1 line
    - web/model/src/index.ts: 1 line
    `serde_json`: 2 lines in 2 files
    - Cargo.toml: 1 line
    - crates/core/Cargo.toml: 1 line

    ## Files

    crates/ (7 files, 660 B)
      cli/ (2 files, 182 B)
        src/ (1 file, 76 B)
          main.rs (76 B)
        Cargo.toml (106 B)
      core/ (3 files, 313 B)
        src/ (2 files, 222 B)
          graph.rs (181 B)
          lib.rs (41 B)
        Cargo.toml (91 B)
      server/ (2 files, 165 B)
        src/ (1 file, 22 B)
          lib.rs (22 B)
        Cargo.toml (143 B)
    docs/ (1 file, 52 B)
      design.md (52 B)
    untracked/ (1 file, 10 B)
      TaskGraph.rs (10 B)
    web/ (4 files, 325 B)
      model/ (2 files, 96 B)
        src/ (1 file, 50 B)
          index.ts (50 B)
        package.json (46 B)
      ui/ (2 files, 229 B)
        src/ (1 file, 115 B)
          App.tsx (115 B)
        package.json (114 B)
    AGENTS.md (25 B)
    Cargo.toml (130 B)
    README.md (46 B)
    package.json (156 B)
    ");
    assert_ne!(later.hash, before.hash);
}

#[test]
fn an_unknown_commit_is_named() {
    let (_dir, repo) = fixture();
    let missing = Oid::from_str("1234567890123456789012345678901234567890").unwrap();
    let err = build(&repo, missing, &MapOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("read commit 1234567890123456789012345678901234567890: "),
        "{err}"
    );
}

/// A commit of `files` (path, content) made in memory with libgit2.
fn commit_files(repo: &Repository, files: &[(String, Vec<u8>)]) -> Oid {
    let mut index = repo.index().unwrap();
    index.clear().unwrap();
    for (path, content) in files {
        let time = IndexTime::new(0, 0);
        let entry = IndexEntry {
            ctime: time,
            mtime: time,
            dev: 0,
            ino: 0,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            file_size: 0,
            id: Oid::ZERO_SHA1,
            flags: 0,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        index.add_frombuffer(&entry, content).unwrap();
    }
    let tree = repo.find_tree(index.write_tree_to(repo).unwrap()).unwrap();
    let sig = git2::Signature::new("Test", "test@example.com", &git2::Time::new(0, 0)).unwrap();
    repo.commit(None, &sig, &sig, "big", &tree, &[]).unwrap()
}

/// 5,000 files in nested directories, `needle_fn` in every seventh.
fn big_repo() -> (tempfile::TempDir, Repo, Oid) {
    let dir = tempfile::tempdir().unwrap();
    let git = Repository::init(dir.path()).unwrap();
    let mut files = Vec::new();
    for i in 0..5000 {
        let path = format!("src/a{}/b{}/c{}/file{i:04}.rs", i % 5, i % 11, i % 13);
        let mut text = format!("// file {i}\nfn f{i}() {{}}\n").repeat(20);
        if i % 7 == 0 {
            text.push_str("needle_fn(); needle_fn();\nneedle_fn\n");
        }
        files.push((path, text.into_bytes()));
    }
    files.push(("Cargo.toml".into(), b"[package]\nname = \"big\"\n".to_vec()));
    let commit = commit_files(&git, &files);
    let repo = Repo::discover(dir.path()).unwrap();
    (dir, repo, commit)
}

#[test]
fn a_large_tree_fits_every_budget_and_the_search_counts_every_file() {
    let (_dir, repo, commit) = big_repo();
    let full = build(&repo, commit, &options("speed up needle_fn", 1_000_000)).unwrap();
    assert_eq!(full.files, 5001);
    assert!(
        full.text
            .contains("`needle_fn`: 1,430 lines in 715 files\n"),
        "{}",
        full.text
    );
    // Nothing collapsed: every file is listed.
    assert!(full.text.contains("      file4999.rs ("), "{}", full.text);
    assert!(!full.text.contains("Collapsed directories"));
    let mut last = usize::MAX;
    for budget in [8000, 2000, 500, 100, 40, 10, 1, 0] {
        let map = build(&repo, commit, &options("speed up needle_fn", budget)).unwrap();
        assert!(
            map.tokens <= budget,
            "{budget}: {} tokens\n{}",
            map.tokens,
            map.text
        );
        assert!(map.text.len() <= last);
        assert!(map.text.is_empty() || map.text.ends_with('\n'));
        last = map.text.len();
        assert_eq!(map.test_command.as_deref(), Some("cargo test"));
    }
    let map = build(&repo, commit, &options("speed up needle_fn", 2000)).unwrap();
    assert!(map.text.contains("Collapsed directories"), "{}", map.text);
    assert!(map.text.contains("\nsrc/ (5,000 files, "), "{}", map.text);
}

#[test]
fn an_empty_commit_has_a_map_too() {
    let dir = tempfile::tempdir().unwrap();
    let git = Repository::init(dir.path()).unwrap();
    let commit = commit_files(&git, &[]);
    let repo = Repo::discover(dir.path()).unwrap();
    let map = build(&repo, commit, &options("fix `main`", 100)).unwrap();
    assert_eq!(
        map.text,
        "# Repository map\n\n0 files, 0 B, tracked at this commit.\n\n\
         ## Goal identifiers\n\n`main`: not found\n\n## Files\n\n"
    );
    assert_eq!(map.test_command, None);
    for budget in 0..30 {
        let map = build(&repo, commit, &options("fix `main`", budget)).unwrap();
        assert!(map.tokens <= budget, "{budget}: {:?}", map.text);
    }
}

/// Synthetic parts: `n` files spread over deep directories, many packages,
/// long instructions, every identifier found everywhere.
fn synthetic(n: usize) -> (Vec<File>, Packages, Text, Commands, Vec<Hits>) {
    let mut files: Vec<File> = (0..n)
        .map(|i| File {
            path: format!("p{}/q{}/r{}/s{}/f{i}.txt", i % 3, i % 7, i % 17, i % 29),
            oid: Oid::ZERO_SHA1,
            size: 1000 + i as u64,
            link: false,
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let manifests: Vec<Text> = (0..200)
        .map(|i: usize| Text {
            path: format!("crates/c{i:03}/Cargo.toml"),
            text: format!(
                "[package]\nname = \"crate-{i}\"\n[dependencies]\nprev = {{ path = \"../c{:03}\" }}\n",
                i.saturating_sub(1)
            ),
        })
        .collect();
    let packages = packages::scan(&manifests);
    let instructions = Text {
        path: "AGENTS.md".into(),
        text: "Always do the right thing, carefully.\n".repeat(2000),
    };
    let commands = commands::infer(&manifests, &files, &packages);
    let hits: Vec<Hits> = (0..8)
        .map(|w| Hits {
            word: format!("word_{w}"),
            lines: n as u64,
            files: files.iter().take(50).map(|f| (f.path.clone(), 1)).collect(),
        })
        .collect();
    (files, packages, instructions, commands, hits)
}

#[test]
fn every_part_shrinks_to_fit_and_the_tree_goes_first() {
    let (files, packages, instructions, commands, hits) = synthetic(20_000);
    let parts = Parts {
        files: &files,
        submodules: 2,
        packages: &packages,
        instructions: Some(&instructions),
        commands: &commands,
        hits: &hits,
    };
    for budget in [0, 1, 5, 20, 60, 200, 1000, 3000, 8000, 30_000] {
        let text = fit(&parts, budget);
        assert!(estimate_tokens(&text) <= budget, "{budget}: {}", text.len());
        assert!(text.is_empty() || text.ends_with('\n'));
    }
    // With room for everything but the whole tree, only the tree shrinks.
    let text = fit(&parts, 30_000);
    assert!(
        text.contains("- crate-1 (crates/c001) -> crate-0\n"),
        "{text}"
    );
    assert!(text.contains("[truncated: "));
    assert!(text.contains("- and 40 more files (p0/q0/ 40)\n"), "{text}");
    assert!(text.contains("Collapsed directories show nothing below them.\n"));
    // A tight budget: the bulky packages are counted, the identifiers
    // totalled, the tree at its top level.
    let text = fit(&parts, 600);
    insta::assert_snapshot!(text, @"
    # Repository map

    20,000 files, 210 MiB, tracked at this commit (and 2 submodules).

    ## Packages

    200 Cargo crates outside a workspace.

    ## Instructions (AGENTS.md)

    Always do the right thing, carefully.
    Always do the right thing, carefully.
    Always do the right thing, carefully.
    Always do the right thing, carefully.
    Always do the right thing, carefully.
    Always do the right thing, carefully.
    Always do the right thing, carefully.
    Always do the right thing, carefully.
    Always do the right thing, carefully.
    Always do the right thing, carefully.
    Always do the right thing, carefully.
    Always do the right thing, carefully.
    Always do the right thing, carefully.
    Always do the right thing, carefully.
    Always do the right thing, carefully.
    [truncated: 1,985 more lines of AGENTS.md]

    ## Commands

    - test: `cd crates/c000 && cargo test` (crates/c000/Cargo.toml)
    - other test commands: `cd crates/c001 && cargo test` (crates/c001/Cargo.toml), `cd crates/c002 && cargo test` (crates/c002/Cargo.toml), `cd crates/c003 && cargo test` (crates/c003/Cargo.toml), `cd crates/c004 && cargo test` (crates/c004/Cargo.toml), ...
    - build: `cd crates/c000 && cargo build` (crates/c000/Cargo.toml)
    - other build commands: `cd crates/c001 && cargo build` (crates/c001/Cargo.toml), `cd crates/c002 && cargo build` (crates/c002/Cargo.toml), `cd crates/c003 && cargo build` (crates/c003/Cargo.toml), `cd crates/c004 && cargo build` (crates/c004/Cargo.toml), ...

    ## Goal identifiers

    `word_0`: 20,000 lines in 50 files
    `word_1`: 20,000 lines in 50 files
    `word_2`: 20,000 lines in 50 files
    `word_3`: 20,000 lines in 50 files
    `word_4`: 20,000 lines in 50 files
    `word_5`: 20,000 lines in 50 files
    `word_6`: 20,000 lines in 50 files
    `word_7`: 20,000 lines in 50 files

    ## Files

    Collapsed directories show nothing below them.
    p0/ (6,667 files, 70 MiB)
      q0/ (953 files, 10 MiB)
      q1/ (952 files, 10 MiB)
      q2/ (952 files, 10 MiB)
      q3/ (953 files, 10 MiB)
      q4/ (952 files, 10 MiB)
      q5/ (952 files, 10 MiB)
      q6/ (953 files, 10 MiB)
    p1/ (6,667 files, 70 MiB)
    p2/ (6,666 files, 70 MiB)
      q0/ (952 files, 10 MiB)
      q1/ (952 files, 10 MiB)
      q2/ (953 files, 10 MiB)
      q3/ (952 files, 10 MiB)
      q4/ (952 files, 10 MiB)
      q5/ (953 files, 10 MiB)
      q6/ (952 files, 10 MiB)
    ");
}

#[test]
fn a_small_map_is_whole() {
    let files = vec![File {
        path: "a.txt".into(),
        oid: Oid::ZERO_SHA1,
        size: 3,
        link: false,
    }];
    let parts = Parts {
        files: &files,
        submodules: 0,
        packages: &Packages::default(),
        instructions: None,
        commands: &Commands::default(),
        hits: &[],
    };
    let text = fit(&parts, 100);
    assert_eq!(
        text,
        "# Repository map\n\n1 file, 3 B, tracked at this commit.\n\n## Files\n\na.txt (3 B)\n"
    );
    // One token short: the tree says it does not fit, then lines go.
    let text = fit(&parts, 19);
    assert!(estimate_tokens(&text) <= 19);
    assert!(text.starts_with("# Repository map\n"));
}

#[test]
fn control_characters_in_names_and_instructions_cannot_break_lines() {
    let dir = tempfile::tempdir().unwrap();
    let git = Repository::init(dir.path()).unwrap();
    let files = vec![
        ("evil\n## Instructions\nname.txt".to_string(), b"x".to_vec()),
        (
            "AGENTS.md".to_string(),
            b"line one\x1b[2J\r\nline two\n".to_vec(),
        ),
        (
            "pkg/package.json".to_string(),
            b"{\"name\": \"a\\nb\\u001b\"}".to_vec(),
        ),
    ];
    let commit = commit_files(&git, &files);
    let repo = Repo::discover(dir.path()).unwrap();
    let map = build(&repo, commit, &MapOptions::default()).unwrap();
    insta::assert_snapshot!(map.text, @r"
    # Repository map

    3 files, 46 B, tracked at this commit.

    ## Packages

    1 npm package outside a workspace:
    - a\nb\x1b (pkg)

    ## Instructions (AGENTS.md)

    line one\x1b[2J
    line two

    ## Files

    pkg/ (1 file, 22 B)
      package.json (22 B)
    AGENTS.md (23 B)
    evil\n## Instructions\nname.txt (1 B)
    ");
    assert_eq!(
        map.text.matches("## Instructions").count(),
        2,
        "{}",
        map.text
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Whatever the tree and the budget, the map fits and is made of whole
    /// lines.
    #[test]
    fn any_tree_fits_any_budget(
        paths in proptest::collection::vec("[a-c]{1,2}(/[a-c]{1,3}){0,5}", 0..300),
        budget in 0usize..2000,
        instructions in "[a-z \n]{0,3000}",
    ) {
        let mut files: Vec<File> = paths
            .iter()
            .enumerate()
            .map(|(i, p)| File {
                path: format!("{p}/f{i}"),
                oid: Oid::ZERO_SHA1,
                size: i as u64 * 37,
                link: false,
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let instructions = Text { path: "AGENTS.md".into(), text: instructions };
        let parts = Parts {
            files: &files,
            submodules: 0,
            packages: &Packages::default(),
            instructions: Some(&instructions),
            commands: &Commands::default(),
            hits: &[],
        };
        let text = fit(&parts, budget);
        proptest::prop_assert!(estimate_tokens(&text) <= budget);
        proptest::prop_assert!(text.is_empty() || text.ends_with('\n'));
        if budget >= 200 {
            proptest::prop_assert!(text.contains("\n## Files\n\n"), "{}", text);
        }
    }
}
