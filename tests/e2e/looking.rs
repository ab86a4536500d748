//! Looking at a run: the HTML page (`--html`, `swarm report --html`) of a
//! real run with a failure, a conflict, an experiment, subtasks and a
//! run-wide verify that blamed a task, rendered in real headless Chromium
//! (Debian's, installed by .ci/run); and `swarm trace` as Chrome trace
//! events.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{TestRepo, redact, snapshot_settings, task};

/// A task whose output tries to run script in the page and to break out
/// of the element it is shown in.
const PAYLOAD: &str = r#"<script>document.title="pwned"</script></textarea></pre><img src=x onerror="document.title='img'">"#;

fn plan() -> String {
    format!(
        r#"[swarm]
name = "look"
on_failure = "continue"
concurrency = 2
verify = "if grep -l BAD *.txt; then exit 1; fi"

[[task]]
id = "good"
creates = ["good.txt"]
run = "echo ok > good.txt"
verify = "sleep 0.05; grep -q ok good.txt"

[[task]]
id = "bad"
creates = ["bad.txt"]
run = "echo BAD > bad.txt"

[[task]]
id = "xss"
creates = ["x.txt"]
run = '''printf '%s\n' '{PAYLOAD}'; exit 1'''

[[task]]
id = "left"
run = "echo left > shared.txt"
allow_overlap = true

[[task]]
id = "right"
run = "echo right > shared.txt"
allow_overlap = true
on_conflict = "stop"

[[task]]
id = "pick"
creates = ["pick.txt"]
variants = 2
run = "echo {{variant}} > pick.txt"
score = "cat pick.txt"
pick = "max"

[[task]]
id = "parent"
creates = ["sub"]
run = '''
mkdir -p sub && echo p > sub/p.txt
cat > "$SWARM_SUBTASKS" <<'REQUEST'
[[task]]
id = "child"
run = "echo c > sub/c.txt"

[[task]]
id = "later"
deps = ["child"]
run = "echo l > sub/l.txt"
REQUEST
'''
"#
    )
}

fn chromium() -> &'static str {
    for name in ["chromium", "chromium-browser"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name;
        }
    }
    panic!("headless Chromium is needed (.ci/run installs Debian's `chromium`)");
}

/// Chromium, headless, on `page`: its DOM after load, and a screenshot.
fn render_in_chromium(page: &Path, screenshot: &Path) -> String {
    let browser = chromium();
    let home = tempfile::tempdir().unwrap();
    let common = |cmd: &mut Command| {
        cmd.env("HOME", home.path())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg(format!(
                "--user-data-dir={}",
                home.path().join("profile").display()
            ));
    };
    let mut dump = Command::new(browser);
    common(&mut dump);
    let out = dump
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut shot = Command::new(browser);
    common(&mut shot);
    let status = shot
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--window-size=1280,1600")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_runs_page_shows_every_task_and_its_timeline_and_runs_nothing_it_was_given() {
    let repo = TestRepo::new();
    let plan = repo.plan_exact("look.toml", &plan());
    let page = repo.root().join("look.html");
    let summary = repo.root().join("summary.md");
    let run = repo.swarm(&[
        "run",
        plan.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
    ]);
    run.assert_code(1);
    let report = repo.report();
    // What the page must show happened.
    let status = |id: &str| task(&report, id)["status"].as_str().unwrap().to_string();
    assert_eq!(status("xss"), "failed");
    assert_eq!(status("bad"), "broke_verify");
    assert!(
        ["left", "right"].iter().any(|t| status(t) == "conflicted"),
        "{report:#}"
    );
    // Merged onto its parent, which is merged.
    assert_eq!(status("parent/child"), "succeeded");
    assert_eq!(status("parent/later"), "succeeded");
    assert_eq!(status("parent"), "merged");
    // The summary points at the page (its line: the rest says which of
    // `left` and `right` conflicted, as the scheduler had it); checked
    // after the page's structure, whose unnamed snapshot an inline one
    // before it would renumber.
    let md = std::fs::read_to_string(&summary).unwrap();
    let points = md
        .lines()
        .find(|l| l.contains("look.html"))
        .unwrap_or_else(|| panic!("no link to the page in:\n{md}"));

    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script"), "the page has a script");
    assert!(html.contains("Content-Security-Policy"));
    // Nothing is loaded from anywhere.
    for remote in ["src=\"http", "href=\"http", "url(", "@import"] {
        assert!(!html.contains(remote), "the page loads {remote}");
    }
    // `swarm report` makes the same page from the journal.
    let again = repo.root().join("again.html");
    repo.swarm(&["report", "look", "--html", again.to_str().unwrap()])
        .assert_code(0);
    assert_eq!(std::fs::read_to_string(&again).unwrap(), html);

    let screenshot = repo.root().join("look.png");
    let dom = render_in_chromium(&page, &screenshot);
    // No script ran: the title is the page's own, and the payload is text.
    assert!(dom.contains("<title>swarm run look</title>"), "{dom}");
    assert!(!dom.contains("pwned</title>") && !dom.contains("<img src=\"x\""));
    assert!(
        dom.contains("&lt;script&gt;document.title"),
        "the payload is not shown as text"
    );
    for t in report["tasks"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap();
        assert!(
            dom.contains(&format!("id=\"task-{id}\"")),
            "no row for {id}"
        );
        assert!(
            dom.contains(&format!("data-task=\"{id}\"")),
            "no node for {id}"
        );
        let s = t["status"].as_str().unwrap();
        assert!(dom.contains(&format!("badge {s}")), "no {s} badge");
    }
    // Subtasks are drawn inside their parent's box, in columns by their
    // own dependencies.
    let [parent, child, later] =
        ["parent", "parent/child", "parent/later"].map(|id| box_of(&html, id));
    for inside in [child, later] {
        assert!(
            inside.0 >= parent.0
                && inside.1 >= parent.1
                && inside.0 + inside.2 <= parent.0 + parent.2
                && inside.1 + inside.3 <= parent.1 + parent.3,
            "{inside:?} is not inside {parent:?}"
        );
    }
    assert!(
        later.0 >= child.0 + child.2,
        "{later:?} is not right of {child:?}"
    );
    let attempts: u64 = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["attempts"].as_u64().unwrap())
        .sum();
    let bars = dom.matches("class=\"bar run").count() as u64;
    assert_eq!(bars, attempts, "one run bar per attempt");
    assert!(dom.matches("class=\"bar merge").count() >= 4);
    assert!(dom.contains("class=\"bar flush"), "no journal flush drawn");
    // The colours are said (issue 63).
    assert!(
        dom.contains("class=\"legend\"") && dom.contains("class=\"swatch bar setup\""),
        "no legend of the phases' colours"
    );
    assert!(
        dom.contains("id=\"experiments\"")
            && dom.contains("id=\"verify\"")
            && dom.contains("id=\"conflicts\"")
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    // The README's picture is made by this test's command.
    if std::env::var_os("SWARM_UPDATE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&screenshot, docs.join("run-page.png")).unwrap();
    }

    // The page's structure: its sections and rows, in order.
    let structure: Vec<String> = html
        .split("id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect();
    snapshot_settings().bind(|| insta::assert_snapshot!(structure.join("\n")));
    insta::assert_snapshot!(redact(points, &repo), @"The whole run, with its graph and timeline: [[TMP]/look.html]([TMP]/look.html)");

    // The trace of the same run.
    let trace = repo.swarm(&["trace", "look"]);
    trace.assert_code(0);
    let trace: Value = serde_json::from_str(&trace.stdout).unwrap();
    let length_us = report["duration_ms"].as_u64().unwrap() * 1000;
    let mut by_track: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    let mut run_ms: BTreeMap<String, u64> = BTreeMap::new();
    let mut phases: BTreeMap<String, u32> = BTreeMap::new();
    let mut flushes = 0;
    for e in trace["traceEvents"].as_array().unwrap() {
        if e["ph"] != "X" {
            continue;
        }
        let (ts, dur) = (e["ts"].as_u64().unwrap(), e["dur"].as_u64().unwrap());
        // The run's own clock and the journal's differ by a few ms at most.
        assert!(
            ts + dur <= length_us + 50_000,
            "{e} ends after the run ({length_us} µs)"
        );
        let tid = e["tid"].as_u64().unwrap();
        if tid == 0 && e["cat"] == "flush" {
            flushes += 1;
        }
        if tid > 0 {
            by_track.entry(tid).or_default().push((ts, ts + dur));
        }
        // A slot's run, verify and score make the attempt's time (the
        // coordinator's verify is the run-wide one).
        if tid > 0 && ["run", "verify", "score"].iter().any(|c| e["cat"] == *c) {
            *phases
                .entry(e["cat"].as_str().unwrap().to_string())
                .or_default() += 1;
            *run_ms
                .entry(e["args"]["task"].as_str().unwrap().to_string())
                .or_default() += dur / 1000;
        }
    }
    // `good`'s verify and the variants' scores are phases of their own.
    assert!(
        phases.get("verify").copied().unwrap_or(0) >= 1,
        "{phases:?}"
    );
    assert!(phases.get("score").copied().unwrap_or(0) >= 1, "{phases:?}");
    // The journal's flushes to the disk, on the coordinator's track.
    assert!(flushes >= 1, "no journal flush in the trace");
    for (tid, mut spans) in by_track {
        spans.sort();
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "slot {tid}: {pair:?} overlap");
        }
    }
    for t in report["tasks"].as_array().unwrap() {
        let id = t["id"].as_str().unwrap();
        let ms = t["duration_ms"].as_u64().unwrap();
        // The journal's clock rounds to milliseconds at both ends.
        let attempts = t["attempts"].as_u64().unwrap();
        let traced = run_ms.get(id).copied().unwrap_or(0);
        assert!(
            traced.abs_diff(ms) <= 2 * attempts,
            "{id}: run spans {traced} ms, reported {ms} ms"
        );
    }
}

/// The box (x, y, width, height) the page's task graph draws for `id`.
fn box_of(html: &str, id: &str) -> (f64, f64, f64, f64) {
    let node = html
        .split(&format!("data-task=\"{id}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no node for {id}"));
    let rect = &node[node.find("<rect").unwrap()..];
    let rect = &rect[..rect.find("/>").unwrap()];
    let attr = |name: &str| -> f64 {
        let at = rect.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        rect[at..].split('"').next().unwrap().parse().unwrap()
    };
    (attr("x"), attr("y"), attr("width"), attr("height"))
}

/// The page of a resumed run says so: its wall time is the timeline's,
/// the gap included, and the timeline marks where the run was taken over
/// (issue 63).
#[test]
fn a_resumed_runs_page_marks_the_interruption_and_counts_its_gap() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "r.toml",
        "[[task]]\nid = \"slow\"\nrun = '''\necho s > started.txt\n\
         if [ \"$SWARM_ATTEMPT\" = 1 ]; then sleep 30; fi\necho ok > ok.txt\n'''\n",
    );
    let mut child = repo
        .swarm_cmd(&["run", plan.to_str().unwrap(), "--name", "r"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = repo.worktree("r", "slow").join("started.txt");
    crate::support::wait_until("the task to start", || started.exists());
    crate::resume::kill9(&mut child);
    repo.swarm(&["resume", "r"]).assert_code(0);
    let page = repo.outside().join("r.html");
    repo.swarm(&["report", "r", "--html", page.to_str().unwrap()])
        .assert_code(0);
    let html = std::fs::read_to_string(&page).unwrap();
    // Its words: the interruption said next to the wall time.
    page_settings().bind(|| {
        insta::assert_snapshot!("resumed_page_text", redact(&page_text(&html), &repo));
    });
    assert_eq!(
        html.matches("<line class=\"resumed\"").count(),
        1,
        "no resume marked"
    );
}

/// The words of a run's page, as a reader sees them: no style, no
/// drawings (the graph's and the timeline's SVG), one line per block
/// (heading, paragraph, table row, list item), entities decoded.
fn page_text(html: &str) -> String {
    let re = |pattern: &str| regex::Regex::new(pattern).unwrap();
    let text = re(r"(?s)<style.*?</style>").replace_all(html, "");
    let text = re(r"(?s)<svg.*?</svg>").replace_all(&text, "");
    let text =
        re(r"(?i)<br ?/?>|</(p|div|tr|h[1-6]|li|section|table|pre|dt|dd|header|title|summary)>")
            .replace_all(&text, "\n");
    let text = re(r"<[^>]+>").replace_all(&text, " ");
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The snapshot filters, and the page's own ways of saying a time
/// (`14 ms`, `1.2 s`, `2m 05s`) and a ratio of times.
fn page_settings() -> insta::Settings {
    let mut settings = snapshot_settings();
    settings.add_filter(r"\b\d+ ms\b", "[T]");
    settings.add_filter(r"\b\d+\.\d s\b", "[T]");
    settings.add_filter(r"\b\d+m \d\ds\b", "[T]");
    settings.add_filter(r"\b\d+\.\dx the wall time", "[X]x the wall time");
    settings
}

/// A run's page says in words what the run did: its state, plan, base and
/// branch, counts, times, each task's status, attempts, files and the end
/// of a failed task's output, and an experiment's ranking. One task at a
/// time, so that the slots used and every order are the same on every
/// run; `swarm report --html` writes the same page afterwards.
#[test]
fn a_runs_page_says_what_happened_in_words() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "words.toml",
        r#"[swarm]
name = "words"
on_failure = "continue"
concurrency = 1

[[task]]
id = "good"
creates = ["good.txt"]
run = "echo ok > good.txt"
verify = "grep -q ok good.txt"

[[task]]
id = "bad"
creates = ["bad.txt"]
run = "echo 'something went wrong' >&2; exit 3"

[[task]]
id = "after"
deps = ["good"]
creates = ["after.txt"]
run = "echo after > after.txt"

[[task]]
id = "pick"
creates = ["pick.txt"]
variants = 2
run = "echo {variant} > pick.txt"
score = "cat pick.txt"
pick = "max"
"#,
    );
    let page = repo.outside().join("words.html");
    repo.run_plan(&plan, &["--html", page.to_str().unwrap()])
        .assert_code(1);
    let text = page_text(&std::fs::read_to_string(&page).unwrap());
    page_settings().bind(|| {
        insta::assert_snapshot!("page_text", redact(&text, &repo));
    });
    let again = repo.outside().join("again.html");
    repo.swarm(&["report", "words", "--html", again.to_str().unwrap()])
        .assert_code(0);
    let again = page_text(&std::fs::read_to_string(&again).unwrap());
    // Times are the journal's, read again: the same page but for them.
    let times = regex::Regex::new(r"\d+(\.\d+)? ?(ms|s)\b|\d+\.\dx").unwrap();
    assert_eq!(
        times.replace_all(&again, "T"),
        times.replace_all(&text, "T")
    );
}
