//! Caps on what swarm keeps of what a task wrote (issue 73, finding 6):
//! a test report's names and messages, the files a `keep_runs` clean
//! commits from a kept worktree, a sharded task's entries. Each is a real
//! task in the real sandbox, driven through the `swarm` binary, whose
//! output is the hostile input.

use crate::resume::journal;
use crate::support::{TestRepo, redact, snapshot_settings, stable_stderr, summary_of, task};

/// Snapshot settings that also hide how many tasks run at once (the
/// header says the CPU count).
fn settings() -> insta::Settings {
    crate::support::snapshot_settings_any_cpus()
}

/// `text` with each run of 20 or more `a`s written as `a×N`.
fn runs_of_a(text: &str) -> String {
    let mut out = String::new();
    let mut run = 0;
    let flush = |out: &mut String, run: usize| match run {
        0..20 => out.push_str(&"a".repeat(run)),
        _ => out.push_str(&format!("a×{run}")),
    };
    for c in text.chars() {
        if c == 'a' {
            run += 1;
            continue;
        }
        flush(&mut out, run);
        run = 0;
        out.push(c);
    }
    flush(&mut out, run);
    out
}

/// The longest line of `text`, in bytes.
fn longest_line(text: &str) -> usize {
    text.lines().map(str::len).max().unwrap_or(0)
}

/// A task's JUnit report of 60 MiB, almost all of it ten failing tests'
/// names, class names and messages (48 MiB of names), is kept as at most
/// a KiB of each, marked cut: the journal's lines, what `swarm run` and
/// `swarm status` print, the run's `--junit` and its HTML page stay small.
#[test]
fn a_report_of_huge_test_names_is_kept_capped_everywhere_it_is_shown() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "j.toml",
        r#"[swarm]
name = "j"

[[task]]
id = "t"
junit = "$TMPDIR/r.xml"
run = '''
a() { head -c "$1" /dev/zero | tr '\0' a; }
{
  printf '<testsuite name="s">'
  for i in 0 1 2 3 4 5 6 7 8 9; do
    printf '<testcase classname="'; a 600000
    printf '" name="%s' "$i"; a 5000000
    printf '"><failure message="'; a 600000
    printf '">'; a 50000
    printf '</failure></testcase>'
  done
  printf '</testsuite>'
} > "$TMPDIR/r.xml"
echo done > done.txt
'''
"#,
    );
    let junit = repo.root().join("run.xml");
    let run = repo.run_plan(&plan, &["--junit", junit.to_str().unwrap()]);
    run.assert_code(0);
    let printed = run.stdout.len() + run.stderr.len();
    assert!(
        printed < 64 << 10,
        "swarm run printed {printed} bytes: {}",
        &run.stderr[..run.stderr.floor_char_boundary(4000)]
    );
    snapshot_settings()
        .bind(|| insta::assert_snapshot!(redact(&runs_of_a(summary_of(&run.stderr)), &repo), @"
        run j: succeeded
          task  status          time  try  changed  result
          t     merged         [T]s    1        1  refs/swarm/j/t

          1 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          tests: 0 passed, 10 failed in 1 task
            failed: a×1024… [cut: 600000 bytes in all]::0a×1023… [cut: 5000001 bytes in all] (in t)
            failed: a×1024… [cut: 600000 bytes in all]::1a×1023… [cut: 5000001 bytes in all] (in t)
            failed: a×1024… [cut: 600000 bytes in all]::2a×1023… [cut: 5000001 bytes in all] (in t)
            failed: a×1024… [cut: 600000 bytes in all]::3a×1023… [cut: 5000001 bytes in all] (in t)
            failed: a×1024… [cut: 600000 bytes in all]::4a×1023… [cut: 5000001 bytes in all] (in t)
            failed: a×1024… [cut: 600000 bytes in all]::5a×1023… [cut: 5000001 bytes in all] (in t)
            failed: a×1024… [cut: 600000 bytes in all]::6a×1023… [cut: 5000001 bytes in all] (in t)
            failed: a×1024… [cut: 600000 bytes in all]::7a×1023… [cut: 5000001 bytes in all] (in t)
            failed: a×1024… [cut: 600000 bytes in all]::8a×1023… [cut: 5000001 bytes in all] (in t)
            failed: a×1024… [cut: 600000 bytes in all]::9a×1023… [cut: 5000001 bytes in all] (in t)
          branch swarm/j at [HASH], [T]s
        "));

    // The journal keeps the counts and ten names, each cut and marked.
    let events = std::fs::read_to_string(repo.path().join(".swarm/runs/j/events.jsonl")).unwrap();
    assert!(
        longest_line(&events) < 64 << 10,
        "a journal line of {} bytes",
        longest_line(&events)
    );
    let report = repo.report();
    let tests = &task(&report, "t")["tests"];
    assert_eq!(tests["failed"], 10);
    let failing = tests["failing"].as_array().unwrap();
    assert_eq!(failing.len(), 10);
    for name in failing {
        let name = name.as_str().unwrap();
        assert!(name.len() < 3 << 10, "{} bytes", name.len());
        assert!(
            name.ends_with("… [cut: 5000001 bytes in all]"),
            "{}",
            &name[name.len() - 100..]
        );
    }
    // Each case as kept: every field at most a KiB and the mark.
    let kept: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(tests["cases"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(kept.len(), 10);
    for case in &kept {
        for field in ["name", "classname", "message", "text"] {
            let value = case[field].as_str().unwrap();
            assert!(value.len() < 5 << 10, "{field}: {} bytes", value.len());
            assert!(value.contains("… [cut"), "{field} not marked cut");
        }
    }

    let status = repo.swarm(&["status", "j"]);
    status.assert_code(0);
    let shown = status.stdout.len() + status.stderr.len();
    assert!(shown < 64 << 10, "swarm status printed {shown} bytes");

    let xml = std::fs::metadata(&junit).unwrap().len();
    assert!(xml < 256 << 10, "the run's JUnit is {xml} bytes");
    let page = repo.root().join("run.html");
    repo.swarm(&["report", "j", "--html", page.to_str().unwrap()])
        .assert_code(0);
    let html = std::fs::metadata(&page).unwrap().len();
    assert!(html < 512 << 10, "the HTML page is {html} bytes");
    assert_eq!(repo.show("swarm/j", "done.txt").trim(), "done");
    assert!(
        journal(&repo, "j")
            .iter()
            .any(|e| e["event"] == "tests_reported")
    );
}

/// A tracked file whose name holds a line break is not two entries of a
/// glob-sharded task's `$SWARM_ENTRIES` (nor its lines some other files'
/// names): it is left out of the task, and the plan's warning names it.
#[test]
fn a_file_named_with_a_line_break_is_left_out_of_the_shards_entries_and_said() {
    let repo = TestRepo::new();
    repo.write("tests/a.txt", "a\n");
    repo.write("tests/b.txt", "b\n");
    // Read by lines, this name is `tests/a.txt` and `b.txt`.
    repo.write("tests/a.txt\nb.txt", "planted\n");
    repo.commit_all("tests");
    let plan = repo.plan(
        "s.toml",
        r#"[swarm]
name = "s"

[[task]]
id = "t"
shards = 1
matrix = { f = { glob = "tests/*" } }
run = 'cp "$SWARM_ENTRIES" entries.txt; for e in {entries}; do echo "$e"; done > words.txt'
"#,
    );
    let run = repo.run_plan(&plan, &[]);
    run.assert_code(0);
    // One line each, as the plan lists them: the planted name is not two.
    assert_eq!(
        repo.show("swarm/s", "entries.txt"),
        "tests/a.txt\ntests/b.txt"
    );
    assert_eq!(
        repo.show("swarm/s", "words.txt"),
        "tests/a.txt\ntests/b.txt"
    );
    settings().bind(|| {
        insta::assert_snapshot!(redact(&stable_stderr(&run.stderr), &repo), @r#"
          ⚠ sharded task `t` leaves out 1 entry holding a line break or another control character, which
          │ would be more than one line of `$SWARM_ENTRIES`: `tests/a.txt\nb.txt`
           ╭─[[TMP]/plans/s.toml:5:6]
         4 │ [[task]]
         5 │ id = "t"
           ·      ─┬─
           ·       ╰── this task
         6 │ shards = 1
           ╰────
          help: rename them to run them; its other entries run
        swarm: run s: 1 task, up to [N] at once, from HEAD ([HASH]) into branch swarm/s
          shards     t         2 entries in 1 task (2)
          start      t-1     
          succeeded  t-1      [1/1]
          merged     t-1

        run s: succeeded
          task  status          time  try  changed  result
          t-1   merged         [T]s    1        2  refs/swarm/s/t-1

          1 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
          branch swarm/s at [HASH], [T]s
        "#)
    });
    let sharded = journal(&repo, "s")
        .into_iter()
        .find(|e| e["event"] == "task_sharded")
        .unwrap();
    assert_eq!(
        sharded["shards"],
        serde_json::json!([["tests/a.txt", "tests/b.txt"]])
    );
}

/// A `keep_runs` clean commits what a failed task's kept worktree holds
/// with the task's own `max_file_size`, as its result was: a sparse file
/// of 300 MiB (and one of 20 MiB, under swarm's default but over the
/// task's 10 MiB) is never read nor committed, and the run says so; the
/// rest of the worktree's work is kept.
#[test]
fn a_keep_runs_clean_commits_no_file_past_the_tasks_max_file_size() {
    let repo = TestRepo::new();
    let first = repo.plan(
        "c.toml",
        r#"[swarm]
name = "c"

[defaults]
warm = false

[[task]]
id = "bad"
max_file_size = "10MiB"
run = "echo half > half.txt; truncate -s 300M big.bin; truncate -s 20M mid.bin; exit 3"
"#,
    );
    repo.run_plan(&first, &[]).assert_code(1);
    let worktree = repo.worktree("c", "bad");
    assert_eq!(
        std::fs::metadata(worktree.join("big.bin")).unwrap().len(),
        300 << 20
    );
    // Work done by hand in the kept worktree after the run.
    std::fs::write(worktree.join("fix.txt"), "by hand\n").unwrap();

    let second = repo.plan(
        "d.toml",
        "[swarm]\nname = \"d\"\nkeep_runs = 1\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n",
    );
    let run = repo.run_plan(&second, &[]);
    run.assert_code(0);
    assert!(!worktree.exists(), "{}", run.stderr);
    let refs = repo.git(&["for-each-ref", "--format=%(refname)", "refs/swarm/c/"]);
    let mut by_hand = false;
    for name in refs.lines() {
        let files = repo.git(&["ls-tree", "-r", "--name-only", name]);
        assert!(
            !files.contains("big.bin") && !files.contains("mid.bin"),
            "{name}: {files}"
        );
        by_hand |= files.lines().any(|f| f == "fix.txt");
    }
    assert!(by_hand, "the work done by hand was not kept: {refs}");
    // And the run says what went with the worktree.
    settings().bind(|| insta::assert_snapshot!(redact(&stable_stderr(&run.stderr), &repo), @r#"
    swarm: run d: 1 task, up to [N] at once, from HEAD ([HASH]) into branch swarm/d
      start      a       
      succeeded  a        [1/1]
      merged     a

    run d: succeeded
      task  status          time  try  changed  result
      a     merged         [T]s    1        0  refs/swarm/d/a

      1 merged, 0 succeeded (read-only), 0 failed, 0 conflicted, 0 blocked or skipped, 0 cancelled
      branch swarm/d at [HASH], [T]s
      warning: `a` changed nothing: it succeeded without changing a file (if it only checks, `isolation = "readonly"` says so)
      cleaned 1 run past the newest 1 (`[swarm] keep_runs`): [SIZE] freed, 0 merged refs deleted; kept 2 refs and 0 branches holding work no other branch has (`swarm clean --refs RUN` says which)
      run c:
      left out of bad's worktree (removed): big.bin: too large ([SIZE], over max_file_size of [SIZE])
      left out of bad's worktree (removed): mid.bin: too large ([SIZE], over max_file_size of [SIZE])
    "#));
}

/// `tool_choice = "schema"`: an answer that names a tool but gives input
/// of the wrong type (a server that did not hold it to the schema) is a
/// refused call the model is told to make again, as unparsable arguments
/// are, never input passed on unchecked: here `finish` with a number for
/// its summary, which would have ended the task with none.
#[test]
fn a_schema_call_of_the_wrong_type_is_refused_to_the_model_not_passed_on() {
    use crate::support::model::{MockModel, Options, Reply, Wire};
    let repo = TestRepo::new();
    let mock = MockModel::start(Options::new("smollm2"), |call| match call.turn {
        0 => Reply::text(r#"{"tool": "finish", "input": {"summary": 5}}"#),
        _ => {
            assert!(
                call.last_user_text.contains("failed")
                    && call.last_user_text.contains(
                        "does not match the input schema of `finish`: at /summary: 5 is not of type \"string\""
                    ),
                "{}",
                call.last_user_text
            );
            Reply::text(r#"{"tool": "finish", "input": {"summary": "checked"}}"#)
        }
    });
    let plan = repo.plan(
        "m.toml",
        &format!(
            r#"[swarm]
name = "m"

[models.default]
provider = "openai"
model = "smollm2"
base_url = "{}"
api_key_env = ""
tool_choice = "schema"

[[task]]
id = "a"
isolation = "readonly"
verify = "true"
prompt = "Say you are done."
"#,
            mock.base_url(Wire::OpenAi)
        ),
    );
    let run = repo.run_plan(&plan, &[]);
    run.assert_code(0);
    mock.assert_clean();
    let report = repo.report();
    let agent = &task(&report, "a")["agent"];
    assert_eq!(agent["summary"], "checked", "{agent}\n{}", run.stderr);
    assert_eq!(mock.calls().len(), 2);
}

/// Issue 75: a task's JUnit report (`junit = "report.xml"`, in its
/// worktree) that is a link is never followed, nor committed with the
/// task's result: the task's own files are.
#[test]
fn a_junit_report_that_is_a_link_is_not_committed() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "jl.toml",
        "[swarm]\nname = \"jl\"\n\n[[task]]\nid = \"t\"\njunit = \"report.xml\"\nrun = \"ln -s /etc/passwd report.xml; echo mine > mine.txt\"\n",
    );
    let run = repo.run_plan(&plan, &[]);
    run.assert_code(0);
    let report = repo.report();
    assert_eq!(task(&report, "t")["status"], "merged", "{report}");
    let tree = repo.git(&["ls-tree", "-r", "--name-only", "swarm/jl"]);
    assert!(tree.contains("mine.txt"), "{tree}");
    assert!(!tree.contains("report.xml"), "{tree}");
}
