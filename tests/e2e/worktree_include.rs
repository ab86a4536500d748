//! `.worktreeinclude` never lets the person's files out (issue 73): a
//! result holding one's content anywhere is refused and that content never
//! reaches git's objects (which every later task reads); no `.git` at any
//! depth is copied; no log, test report or summary shows their lines; and
//! what a task leaves in its warm worktree (a directory or a link where an
//! included file goes, a repository in an ignored directory) is gone
//! before the next run's task.

use std::path::Path;

use crate::support::{Run, TestRepo, redact, snapshot_settings, summary_of, task};

/// The value of the person's secret, and their `.env` holding it.
const SECRET: &str = "sk-live-5f3a9c0e7b2d4f61";
const ENV: &str = "API_TOKEN=sk-live-5f3a9c0e7b2d4f61\nPORT=8080\n";

/// A project whose ignored `.env` (the person's) `.worktreeinclude` names.
fn project(ignore: &str, include: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".gitignore", ignore);
    repo.write(".worktreeinclude", include);
    repo.write("README.md", "# project\n");
    repo.commit_all("a project with a .worktreeinclude");
    std::fs::write(repo.path().join(".env"), ENV).unwrap();
    repo
}

/// Every object of the repository's database (loose and packed, kept
/// packs too) whose content holds `needle`.
fn objects_holding(repo: &TestRepo, needle: &str) -> Vec<String> {
    let listed = repo.git(&[
        "cat-file",
        "--batch-all-objects",
        "--batch-check=%(objectname)",
    ]);
    let ids: Vec<&str> = listed.lines().collect();
    let mut cmd = std::process::Command::new("git");
    cmd.current_dir(repo.path())
        .args(["cat-file", "--batch"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        for id in &ids {
            writeln!(stdin, "{id}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap().stdout;
    // `<id> <type> <size>\n<content>\n` per object.
    let mut found = Vec::new();
    let mut rest = out.as_slice();
    while let Some(eol) = rest.iter().position(|b| *b == b'\n') {
        let header = String::from_utf8_lossy(&rest[..eol]).into_owned();
        let size: usize = header.rsplit(' ').next().unwrap().parse().unwrap();
        let content = &rest[eol + 1..eol + 1 + size];
        if content
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
        {
            found.push(header);
        }
        rest = &rest[eol + 1 + size + 1..];
    }
    found
}

/// Every file under `dir` whose content holds `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && std::fs::read(&path)
                    .unwrap()
                    .windows(needle.len())
                    .any(|w| w == needle.as_bytes())
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[test]
fn a_result_holding_an_included_file_anywhere_is_refused_and_never_reaches_git() {
    let repo = project(".env\n", ".env\n");
    // Setup writes a file from `.env` that is not ignored: setup's, left
    // alone, it is in no result and fails no task.
    let plan = repo.plan(
        "i.toml",
        "[swarm]\non_failure = \"continue\"\n\n\
         [setup]\nrun = \"{ cat .env; echo generated; } > setup-made.cfg\"\n\n\
         [[task]]\nid = \"plus\"\nretries = 1\nwarm = false\nrun = \"cp .env config.txt && echo x >> config.txt\"\n\n\
         [[task]]\nid = \"appends\"\nrun = \"echo more >> README.md && cat .env >> README.md\"\n\n\
         [[task]]\nid = \"innocent\"\nrun = \"echo work > work.txt\"\n",
    );
    let run = repo.run_plan(&plan, &["--name", "i"]);
    run.assert_code(1);
    let report = repo.report();
    // Why each refused task failed, as the summary says it.
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(summary_of(&run.stderr), &repo), @"
        run i: finished with failures (exit 1)
          task      status          time  try  changed  result
          plus      failed         [T]s    2        1  refs/swarm/i/plus
          appends   failed         [T]s    1        1  refs/swarm/i/appends
          innocent  merged         [T]s    1        1  refs/swarm/i/innocent

          1 merged, 0 succeeded (read-only), 2 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/i at [HASH], [T]s
          plus: wrote outside its paths: config.txt (holds the content of .env, a file of yours from .worktreeinclude, never committed: the rest of it is committed); its work is on refs/swarm/i/plus: add it to `paths` or `creates`, or leave it to another task
          plus log: .swarm/runs/i/logs/plus/2.err
          appends: wrote outside its paths: README.md (holds the content of .env, a file of yours from .worktreeinclude, never committed: the rest of it is committed); its work is on refs/swarm/i/appends: add it to `paths` or `creates`, or leave it to another task
          appends log: .swarm/runs/i/logs/appends/1.err
          plus: 2 files not committed (see the report):
            config.txt: refused by git: committed without the content of .env in it, which is never committed
            setup-made.cfg: refused by git: committed without the content of .env in it, which is never committed
          appends: 2 files not committed (see the report):
            README.md: refused by git: committed without the content of .env in it, which is never committed
            setup-made.cfg: refused by git: committed without the content of .env in it, which is never committed
          innocent: 1 file not committed (see the report):
            setup-made.cfg: refused by git: committed without the content of .env in it, which is never committed
        "));
    assert_eq!(
        task(&report, "innocent")["status"],
        "merged",
        "{}",
        run.stderr
    );
    let merged = repo.git(&["ls-tree", "-r", "--name-only", "swarm/i"]);
    assert!(merged.contains("work.txt"), "{merged}");
    assert!(!merged.contains("setup-made.cfg"), "{merged}");
    assert_eq!(repo.show("swarm/i", "README.md"), "# project");
    // Nothing correct is thrown away: what the task wrote around it is on
    // its ref, with a word where the content was.
    let kept = repo.show("refs/swarm/i/appends", "README.md");
    assert_eq!(
        kept,
        "# project\nmore\n[swarm: the content of .env was left out here]"
    );
    // No object of the repository holds it: not the refused attempts'
    // (both of them), not setup's, not a commit message.
    assert_eq!(objects_holding(&repo, SECRET), Vec::<String>::new());
    // Nor once `swarm clean` kept what the failed task's worktree (not a
    // warm one) still holds, its copy, before removing it.
    let cleaned = repo.swarm(&["clean", "i"]);
    cleaned.assert_code(0);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&cleaned.stdout, &repo), @"
    run i: removed 1 worktree ([SIZE]) and 4 tmp directories ([SIZE])
      kept plus's uncommitted work on refs/swarm/i/plus.2
      left out of plus's worktree (removed): config.txt: refused by git: committed without the content of .env in it, which is never committed
      left out of plus's worktree (removed): setup-made.cfg: refused by git: committed without the content of .env in it, which is never committed
    kept [SIZE] of build caches (swarm clean --caches frees them):
      [WORKTREES]/.cache/@setup ([SIZE])
    freed [SIZE]
    "));
    assert_eq!(objects_holding(&repo, SECRET), Vec::<String>::new());
}

#[test]
fn no_git_directory_at_any_depth_nor_a_nested_repositorys_files_is_copied() {
    let repo = project(".env\nvendor/\n", ".env\nvendor/\n");
    let vendor = repo.path().join("vendor");
    std::fs::create_dir_all(vendor.join("lib")).unwrap();
    std::fs::write(vendor.join("own.txt"), "mine\n").unwrap();
    // A nested repository whose configuration holds a CI token.
    repo.git_in(&vendor.join("lib"), &["init", "-q"]);
    repo.git_in(
        &vendor.join("lib"),
        &[
            "config",
            "http.extraheader",
            "AUTHORIZATION: basic c2VjcmV0",
        ],
    );
    std::fs::write(vendor.join("lib/code.txt"), "theirs\n").unwrap();
    // A linked worktree's `.git` file deeper down.
    std::fs::create_dir_all(vendor.join("deep/x")).unwrap();
    std::fs::write(vendor.join("deep/x/.git"), "gitdir: /elsewhere\n").unwrap();
    std::fs::write(vendor.join("deep/x/f.txt"), "theirs too\n").unwrap();
    let plan = repo.plan(
        "g.toml",
        "[[task]]\nid = \"t\"\nrun = '''\nset -e\ntest -f vendor/own.txt\ntest ! -e vendor/lib\ntest ! -e vendor/deep/x\n\
         echo ok > ok.txt\n'''\n",
    );
    // Only git in PATH: no toolchain of this machine's is listed.
    let mut cmd = repo.swarm_cmd(&["validate", plan.to_str().unwrap()]);
    crate::sandbox::only_git_in_path(&repo, &mut cmd);
    let validate = Run::from(cmd.output().unwrap());
    validate.assert_code(0);
    snapshot_settings().bind(|| insta::assert_snapshot!(redact(&validate.stdout, &repo), @"
    [TMP]/plans/g.toml: ok: 1 task, 1 without dependencies, longest chain 1, base HEAD ([HASH])
    toolchains        none found (or turned off by `toolchains`)
    worktrees         [WORKTREES]
    includes          .worktreeinclude copies 2 files of yours into each worktree, never committed: .env, vendor/own.txt (the list came with the repository)
    warm              1 task's worktree: kept between runs ([WORKTREES]/.warm; `warm = false` opts out)
    "));
    let run = repo.run_plan(&plan, &["--name", "g"]);
    run.assert_code(0);
    assert_eq!(repo.show("swarm/g", "ok.txt"), "ok");
}

#[test]
fn no_log_test_report_or_summary_shows_an_included_files_lines() {
    let repo = project(".env\n", ".env\n");
    let plan = repo.plan(
        "r.toml",
        "[[task]]\nid = \"prints\"\njunit = \"report.xml\"\nrun = '''\n\
         cat .env\nv=$(sed -n 's/^API_TOKEN=//p' .env)\necho \"connecting with $v\" >&2\n\
         printf '<testsuite><testcase name=\"t_%s\" classname=\"c\"><failure message=\"got %s\">x</failure></testcase></testsuite>' \"$v\" \"$v\" > report.xml\n\
         exit 1\n'''\n",
    );
    let junit = repo.outside().join("run.xml");
    let run = repo.run_plan(&plan, &["--name", "r", "--junit", junit.to_str().unwrap()]);
    run.assert_code(1);
    assert!(!run.stderr.contains(SECRET), "{}", run.stderr);
    let logs = repo.swarm(&["logs", "r", "prints"]);
    logs.assert_code(0);
    assert!(
        !logs.stdout.contains(SECRET) && !logs.stderr.contains(SECRET),
        "{}{}",
        logs.stdout,
        logs.stderr
    );
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(redact(&logs.stdout, &repo), @"
    [redacted]
    [redacted]
    --- stderr
    connecting with [redacted]
    ")
    });
    let exported = std::fs::read_to_string(&junit).unwrap();
    assert!(!exported.contains(SECRET), "{exported}");
    // Nothing the run keeps holds it: logs, test cases, journal.
    let run_dir = repo.path().join(".swarm/runs/r");
    assert_eq!(files_holding(&run_dir, SECRET), Vec::<String>::new());
    assert!(
        std::fs::read_to_string(run_dir.join("logs/prints/1.tests.json"))
            .unwrap()
            .contains("got [redacted]")
    );
}

#[test]
fn what_a_task_leaves_in_its_warm_worktree_in_place_of_included_files_is_gone_next_run() {
    let repo = project(".env\nconf\ntarget/\n", ".env\nconf/\n");
    std::fs::create_dir_all(repo.path().join("conf")).unwrap();
    std::fs::write(repo.path().join("conf/local.key"), "key-0123456789abcdef\n").unwrap();
    let host = repo.outside().join("host-conf");
    std::fs::create_dir_all(&host).unwrap();
    // Run one's task turns `.env` into a directory and `conf` into a link
    // to a host directory, and leaves a repository in ignored build output.
    let planting = repo.plan(
        "p.toml",
        &format!(
            "[[task]]\nid = \"t\"\nrun = '''\nset -e\nrm .env && mkdir -p .env/inside && rm -r conf && ln -s {} conf\n\
             mkdir -p target/x target/y && git -C target/x init -q && echo 'gitdir: /elsewhere' > target/y/.git\n\
             echo built > target/out.txt\n'''\n",
            host.display()
        ),
    );
    repo.run_plan(&planting, &["--name", "one"]).assert_code(0);
    let plan = repo.plan(
        "q.toml",
        "[[task]]\nid = \"t\"\nrun = '''\nset -e\ngrep -q API_TOKEN .env\ntest -f conf/local.key\ntest ! -L conf\n\
         test -f target/out.txt\ntest ! -e target/x/.git\ntest ! -e target/y/.git\necho ok > ok.txt\n'''\n",
    );
    let run = repo.run_plan(&plan, &["--name", "two"]);
    run.assert_code(0);
    assert_eq!(repo.show("swarm/two", "ok.txt"), "ok");
    // Nothing was written through the link.
    assert_eq!(std::fs::read_dir(&host).unwrap().count(), 0);
}

#[test]
fn resume_keeps_an_interrupted_attempts_work_without_an_included_files_content() {
    let repo = project(".env\n", ".env\n");
    let plan = repo.plan(
        "k.toml",
        "[[task]]\nid = \"t\"\nwarm = false\nrun = '''\ncp .env leak.txt\necho mine > mine.txt\n\
         if [ \"$SWARM_ATTEMPT\" = 1 ]; then touch started; sleep 60; fi\n'''\n",
    );
    let mut child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap(), "--name", "k"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::support::wait_until("the task to start", || {
        repo.worktree("k", "t").join("started").exists()
    });
    crate::resume::kill9(&mut child);
    // The interrupted attempt's worktree is kept on `t.1` as `swarm
    // resume` takes it back; its second attempt is refused as the first
    // would have been.
    repo.swarm(&["resume", "k"]).assert_code(1);
    assert_eq!(repo.show("refs/swarm/k/t.1", "mine.txt"), "mine");
    assert_eq!(objects_holding(&repo, SECRET), Vec::<String>::new());
}
