//! A run as one self-contained HTML page: the task graph and a timeline of
//! every attempt as SVG, each task's status, reason, attempts, time, cost,
//! files, refs and the end of its logs, experiment rankings, the run-wide
//! verify's bisection, conflicts and replans, and the totals. Made from
//! the run's report and journal only, so a finished, failed, interrupted
//! or resumed run looks the same; nothing is fetched (it opens from a CI
//! artifact or `file://`).
//!
//! Everything a task wrote is untrusted: every text is escaped where it
//! goes, the page has no script at all, and its Content-Security-Policy
//! allows nothing but its own style sheet (by hash): no script, no inline
//! event handler, no remote load, no form.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use swarm_protocol::{RunReport, TaskReport, TaskStatus};

use crate::timeline::{Timeline, Track};

/// Past this many tasks the graph is not drawn (it would be unreadable):
/// the timeline and the table still show every task.
pub const MAX_GRAPH_TASKS: usize = 400;
/// Bytes of each log's end shown per task.
pub const LOG_TAIL: usize = 4096;

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}\
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}\
th{background:#f4f4f4}pre{background:#f7f7f7;padding:6px;overflow:auto;max-height:20em;white-space:pre-wrap;word-break:break-all}\
.badge{padding:1px 6px;border-radius:3px;color:#fff;font-size:.9em}\
.merged,.succeeded{background:#2e7d32;fill:#2e7d32}.failed,.timed_out,.broke_verify{background:#c62828;fill:#c62828}\
.conflicted{background:#ef6c00;fill:#ef6c00}.blocked,.skipped,.cancelled,.pending{background:#757575;fill:#9e9e9e}\
.running{background:#1565c0;fill:#1565c0}\
svg text{font:11px system-ui,sans-serif;fill:#222}svg .label{fill:#fff}\
.edge{stroke:#999;fill:none}rect.group{fill-opacity:.12;stroke:#888}svg .group-label{font-weight:600}\
.bar.setup{fill:#4db6ac}.bar.start{fill:#90caf9}.bar.run{fill:#1565c0}.bar.snapshot{fill:#7e57c2}.bar.merge{fill:#2e7d32}.bar.verify{fill:#ef6c00}.bar.score{fill:#f9a825}.bar.flush{fill:#6d4c41}\
.bar.wait{fill:#e0e0e0}.resumed{stroke:#6a1b9a;stroke-width:2;stroke-dasharray:4 3}.area{fill:#1565c0}.critical{stroke:#d50000;stroke-width:2}.axis{stroke:#bbb}\
.muted{color:#777}.mono{font-family:ui-monospace,monospace}";

/// Escapes `text` for HTML text and quoted attributes; control characters
/// (a task's escape sequences) are shown as `\xNN`.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

fn seconds(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 600_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{}m {:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// The status's CSS class: its name in the report's JSON.
fn status_class(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::BrokeVerify => "broke_verify",
        other => other.as_str(),
    }
}

/// The page of `report`, whose journal laid out is `timeline`; `logs`
/// gives the end of a task's output (stdout then stderr), as text.
pub fn render(
    report: &RunReport,
    timeline: &Timeline,
    logs: &dyn Fn(&TaskReport) -> String,
) -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    let mut out = String::with_capacity(64 * 1024 + report.tasks.len() * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'sha256-{hash}'; img-src data:; form-action 'none'; base-uri 'none'\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>swarm run {run}</title><style>{STYLE}</style></head><body>\n",
        run = esc(&report.run)
    );
    header(&mut out, report, timeline);
    let index: HashMap<&str, usize> = report
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let critical = critical_path(report, &index);
    graph(&mut out, report, &index);
    gantt(&mut out, report, timeline, &critical);
    slots(&mut out, timeline);
    experiments(&mut out, report);
    run_verify(&mut out, report);
    conflicts(&mut out, report);
    replans(&mut out, report);
    tasks(&mut out, report, logs);
    out.push_str("</body></html>\n");
    out
}

fn header(out: &mut String, report: &RunReport, timeline: &Timeline) {
    let state = match report.exit_code {
        None => "running or interrupted",
        Some(0) => "finished ok",
        Some(130) => "stopped",
        Some(_) => "finished with failures",
    };
    let _ = write!(
        out,
        "<header id=\"summary\"><h1>swarm run <span class=\"mono\">{}</span></h1>\
         <p>{state} · plan <span class=\"mono\">{}</span> · base <span class=\"mono\">{}</span> ({})",
        esc(&report.run),
        esc(&report.plan),
        esc(&report.base),
        esc(crate::git::short(&report.base_commit)),
    );
    if let Some(branch) = &report.integration_branch {
        let _ = write!(
            out,
            " · branch <span class=\"mono\">{}</span> at {}",
            esc(branch),
            esc(crate::git::short(&report.integration_commit))
        );
    }
    out.push_str("</p>");
    // The tests the tasks reported themselves (`junit`), and which failed.
    if let Some(line) = crate::test_report::tests_line(report) {
        let _ = write!(out, "<p id=\"tests\">{}", esc(&line));
        let mut said = "";
        for (word, task, test) in &crate::test_report::named_tests(report) {
            if *word != said {
                let _ = write!(out, "; {word}:");
                said = word;
            }
            let _ = write!(
                out,
                " <span class=\"mono\">{}</span> (in {})",
                esc(test),
                esc(task)
            );
        }
        out.push_str("</p>");
    }
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for t in &report.tasks {
        *counts
            .entry((t.status.as_str(), status_class(t.status)))
            .or_default() += 1;
    }
    let work: u64 = report
        .tasks
        .iter()
        .map(|t| t.duration_ms + t.snapshot_ms)
        .sum();
    // A resumed run's report times its last part: the page's wall time is
    // the timeline's, from the first start to the end, gaps included.
    let wall = match timeline.resumes.is_empty() {
        true => report.duration_ms.unwrap_or(timeline.length_ms),
        false => timeline.length_ms,
    };
    let interrupted = match timeline.resumes.len() {
        0 => String::new(),
        1 => " (interrupted once, resumed; the gap included)".to_string(),
        n => format!(" (interrupted {n} times, resumed; the gaps included)"),
    };
    let (tokens, cost) =
        report
            .tasks
            .iter()
            .filter_map(|t| t.agent.as_ref())
            .fold((0u64, 0.0f64), |(n, c), a| {
                (
                    n + a.usage.input_tokens + a.usage.output_tokens,
                    c + a.cost_usd,
                )
            });
    out.push_str("<table id=\"totals\"><tr><th>tasks</th><td>");
    let _ = write!(out, "{}", report.tasks.len());
    for ((status, class), n) in &counts {
        let _ = write!(out, " · <span class=\"badge {class}\">{status}</span> {n}");
    }
    let _ = write!(
        out,
        "</td></tr><tr><th>wall time</th><td>{}{interrupted}</td></tr>\
         <tr><th>task time (sum)</th><td>{} ({:.1}x the wall time, {} slot{} used)</td></tr>",
        seconds(wall),
        seconds(work),
        if wall > 0 {
            work as f64 / wall as f64
        } else {
            0.0
        },
        timeline.slots,
        if timeline.slots == 1 { "" } else { "s" }
    );
    if tokens > 0 || cost > 0.0 {
        let _ = write!(
            out,
            "<tr><th>model use</th><td>{tokens} tokens, ${cost:.4}</td></tr>"
        );
    }
    out.push_str("</table></header>\n");
}

/// Each task's depth: the longest chain of dependencies (a subtask one
/// deeper than its parent). Iterative, in topological order (Kahn), so a
/// chain of 100,000 tasks needs no deep stack; a task on a cycle (there is
/// none in a run) gets depth 0.
fn depths(report: &RunReport, index: &HashMap<&str, usize>) -> Vec<usize> {
    let n = report.tasks.len();
    let above = |t: &TaskReport| -> Vec<usize> {
        t.deps
            .iter()
            .chain(t.parent.iter())
            .filter_map(|d| index.get(d.as_str()).copied())
            .collect()
    };
    let mut waiting = vec![0usize; n];
    let mut below: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, t) in report.tasks.iter().enumerate() {
        for d in above(t) {
            waiting[i] += 1;
            if let Some(b) = below.get_mut(d) {
                b.push(i);
            }
        }
    }
    let mut depth = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    while let Some(i) = ready.pop() {
        let next = depth[i] + 1;
        for &b in &below[i] {
            depth[b] = depth[b].max(next);
            waiting[b] -= 1;
            if waiting[b] == 0 {
                ready.push(b);
            }
        }
    }
    depth
}

/// The chain of tasks (by dependencies) that took longest, end to end.
fn critical_path(report: &RunReport, index: &HashMap<&str, usize>) -> Vec<bool> {
    let order = {
        let d = depths(report, index);
        let mut order: Vec<usize> = (0..report.tasks.len()).collect();
        order.sort_by_key(|&i| d[i]);
        order
    };
    let mut best = vec![0u64; report.tasks.len()];
    let mut from: Vec<Option<usize>> = vec![None; report.tasks.len()];
    for &i in &order {
        let t = &report.tasks[i];
        let (above, via) = t
            .deps
            .iter()
            .filter_map(|d| index.get(d.as_str()).copied())
            .map(|d| (best[d], Some(d)))
            .max()
            .unwrap_or((0, None));
        best[i] = above + t.duration_ms + t.snapshot_ms;
        from[i] = via;
    }
    let mut on = vec![false; report.tasks.len()];
    let mut at = (0..report.tasks.len()).max_by_key(|&i| best[i]);
    while let Some(i) = at {
        if on[i] {
            break;
        }
        on[i] = true;
        at = from[i];
    }
    on
}

/// A leaf's box in the task graph, and the spacing around boxes.
const NODE_W: usize = 170;
const NODE_H: usize = 26;
const GAP_X: usize = 40;
const GAP_Y: usize = 10;
/// Inside a task's box that holds its subtasks: the margin, and the
/// band at its top that carries its own name.
const PAD: usize = 8;
const HEADER: usize = 22;

/// Lays `members` (siblings: top-level tasks, or one task's subtasks)
/// out in columns by their dependencies among themselves, each member
/// `size[member]` big. Returns each member's offset from the group's
/// corner, and the group's size.
fn columns(
    members: &[usize],
    report: &RunReport,
    index: &HashMap<&str, usize>,
    size: &[(usize, usize)],
) -> (Vec<(usize, usize)>, (usize, usize)) {
    let local: HashMap<usize, usize> = members.iter().enumerate().map(|(k, &i)| (i, k)).collect();
    // Kahn over the members alone: iterative, and a cycle (there is none
    // in a run) leaves its tasks in column 0.
    let mut waiting = vec![0usize; members.len()];
    let mut below: Vec<Vec<usize>> = vec![Vec::new(); members.len()];
    for (k, &i) in members.iter().enumerate() {
        for d in &report.tasks[i].deps {
            if let Some(&dk) = index.get(d.as_str()).and_then(|d| local.get(d)) {
                waiting[k] += 1;
                below[dk].push(k);
            }
        }
    }
    let mut column = vec![0usize; members.len()];
    let mut ready: Vec<usize> = (0..members.len()).filter(|&k| waiting[k] == 0).collect();
    while let Some(k) = ready.pop() {
        for &b in &below[k] {
            column[b] = column[b].max(column[k] + 1);
            waiting[b] -= 1;
            if waiting[b] == 0 {
                ready.push(b);
            }
        }
    }
    let columns = column.iter().max().map_or(0, |&c| c + 1);
    let mut col_w = vec![0usize; columns];
    let mut col_h = vec![0usize; columns];
    let mut offset = vec![(0usize, 0usize); members.len()];
    for (k, &i) in members.iter().enumerate() {
        let c = column[k];
        offset[k].1 = col_h[c];
        col_h[c] += size[i].1 + GAP_Y;
        col_w[c] = col_w[c].max(size[i].0);
    }
    let mut x = 0;
    let mut col_x = vec![0usize; columns];
    for c in 0..columns {
        col_x[c] = x;
        x += col_w[c] + GAP_X;
    }
    for (k, o) in offset.iter_mut().enumerate() {
        o.0 = col_x[column[k]];
    }
    let width = x.saturating_sub(GAP_X);
    let height = col_h.iter().max().map_or(0, |h| h.saturating_sub(GAP_Y));
    (offset, (width, height))
}

/// The task graph: a box per task, in columns by dependencies, with a
/// task's subtasks drawn inside its box (laid out the same way among
/// themselves), and an edge per dependency.
fn graph(out: &mut String, report: &RunReport, index: &HashMap<&str, usize>) {
    out.push_str("<section id=\"graph\"><h2>Task graph</h2>\n");
    let n = report.tasks.len();
    if n > MAX_GRAPH_TASKS {
        let _ = writeln!(
            out,
            "<p class=\"muted\">{n} tasks: the graph is drawn up to {MAX_GRAPH_TASKS}; the timeline and the table below show every task.</p></section>"
        );
        return;
    }
    // Who holds whom: a subtask's box is inside its parent's.
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut parent: Vec<Option<usize>> = vec![None; n];
    let mut top = Vec::new();
    for (i, t) in report.tasks.iter().enumerate() {
        match t.parent.as_ref().and_then(|p| index.get(p.as_str())) {
            Some(&p) if p != i => {
                children[p].push(i);
                parent[i] = Some(p);
            }
            _ => top.push(i),
        }
    }
    // How deep each box sits (bounded by the task count: a parent loop,
    // which a run cannot have, stops there).
    let nesting: Vec<usize> = (0..n)
        .map(|i| {
            let (mut at, mut d) = (i, 0);
            while let Some(p) = parent[at]
                && d < n
            {
                at = p;
                d += 1;
            }
            d
        })
        .collect();
    // Sizes from the innermost boxes out; then places from the outside in.
    let mut by_nesting: Vec<usize> = (0..n).collect();
    by_nesting.sort_by_key(|&i| std::cmp::Reverse(nesting[i]));
    let mut size = vec![(NODE_W, NODE_H); n];
    let mut inner: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for &i in &by_nesting {
        if children[i].is_empty() {
            continue;
        }
        let (offsets, (w, h)) = columns(&children[i], report, index, &size);
        size[i] = ((w + 2 * PAD).max(NODE_W), HEADER + h + PAD);
        inner[i] = offsets;
    }
    let (top_offsets, (width, height)) = columns(&top, report, index, &size);
    let mut place = vec![(0usize, 0usize); n];
    for (k, &i) in top.iter().enumerate() {
        place[i] = (5 + top_offsets[k].0, 5 + top_offsets[k].1);
    }
    by_nesting.reverse();
    for &i in &by_nesting {
        let (x, y) = place[i];
        for (k, &c) in children[i].iter().enumerate() {
            place[c] = (x + PAD + inner[i][k].0, y + HEADER + inner[i][k].1);
        }
    }
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"task graph\">",
        width + 10,
        height + 10
    );
    let node = |out: &mut String, i: usize, group: bool| {
        let t = &report.tasks[i];
        let ((x, y), (w, h)) = (place[i], size[i]);
        let label: String = t.id.chars().take(24).collect();
        let (g, text_class) = match group {
            true => (" group", "group-label"),
            false => ("", "label"),
        };
        let _ = write!(
            out,
            "<g class=\"node{g}\" data-task=\"{id}\"><title>{id}: {status}</title>\
             <rect class=\"{status}{g}\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"4\"/>\
             <text class=\"{text_class}\" x=\"{}\" y=\"{}\">{}</text></g>",
            x + 6,
            y + 17,
            esc(&label),
            id = esc(&t.id),
            status = status_class(t.status),
        );
    };
    // Outer boxes first, so that what they hold is drawn over them.
    for &i in &by_nesting {
        if !children[i].is_empty() {
            node(out, i, true);
        }
    }
    for (i, t) in report.tasks.iter().enumerate() {
        let ((x, y), (_, h)) = (place[i], size[i]);
        for d in &t.deps {
            if let Some(&from) = index.get(d.as_str()) {
                let ((fx, fy), (fw, fh)) = (place[from], size[from]);
                let _ = write!(
                    out,
                    "<path class=\"edge\" d=\"M{} {} C{} {} {} {} {x} {}\"/>",
                    fx + fw,
                    fy + fh / 2,
                    fx + fw + GAP_X / 2,
                    fy + fh / 2,
                    x.saturating_sub(GAP_X / 2),
                    y + h / 2,
                    y + h / 2
                );
            }
        }
    }
    for (i, held) in children.iter().enumerate() {
        if held.is_empty() {
            node(out, i, false);
        }
    }
    out.push_str("</svg></section>\n");
}

fn gantt(out: &mut String, report: &RunReport, timeline: &Timeline, critical: &[bool]) {
    out.push_str("<section id=\"timeline\"><h2>Timeline</h2>\n<p class=\"muted\">Each attempt: waiting for a slot (grey), setup (the plan's [setup]), start, run (the command, in its sandbox), verify, score, snapshot; the coordinator's merges, run-wide verify and journal flushes to the disk on the first row. Red outline: the critical path.</p>\n");
    // What each colour is, drawn with the bars' own classes.
    out.push_str("<p class=\"legend\">");
    for (class, what) in [
        ("wait", "waiting for a slot"),
        ("setup", "[setup]"),
        ("start", "start"),
        ("run", "run"),
        ("verify", "verify"),
        ("score", "score"),
        ("snapshot", "snapshot"),
        ("merge", "merge"),
        ("flush", "journal flush"),
    ] {
        let _ = write!(
            out,
            "<svg width=\"12\" height=\"10\"><rect class=\"swatch bar {class}\" width=\"12\" height=\"10\"/></svg> {what} "
        );
    }
    out.push_str("</p>\n");
    let (label_w, plot_w, row_h) = (180.0f64, 900.0f64, 16usize);
    let length = timeline.length_ms.max(1) as f64;
    let x = |ms: u64| label_w + ms as f64 / length * plot_w;
    let rows = report.tasks.len() + 1;
    let height = rows * row_h + 24;
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"timeline\">",
        label_w + plot_w + 50.0
    );
    // The axis, in five steps.
    for step in 0..=5u64 {
        let ms = timeline.length_ms * step / 5;
        let _ = write!(
            out,
            "<line class=\"axis\" x1=\"{0:.1}\" y1=\"0\" x2=\"{0:.1}\" y2=\"{1}\"/><text x=\"{0:.1}\" y=\"{2}\">{3}</text>",
            x(ms),
            height - 14,
            height - 2,
            seconds(ms)
        );
    }
    let _ = write!(out, "<text x=\"2\" y=\"{}\">coordinator</text>", row_h - 4);
    let row_of: HashMap<&str, usize> = report
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i + 1))
        .collect();
    for (i, t) in report.tasks.iter().enumerate() {
        // A long id is cut, and said whole when pointed at.
        let mut label: String = t.id.chars().take(26).collect();
        if label.len() < t.id.len() {
            label.pop();
            label.push('…');
        }
        let _ = write!(
            out,
            "<text x=\"2\" y=\"{}\"><title>{}</title>{}</text>",
            (i + 2) * row_h - 4,
            esc(&t.id),
            esc(&label)
        );
    }
    let bar = |out: &mut String,
               class: &str,
               row: usize,
               start: u64,
               dur: u64,
               title: String,
               extra: &str| {
        let _ = write!(
            out,
            "<rect class=\"bar {class}{extra}\" x=\"{:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{}\"><title>{}</title></rect>",
            x(start),
            row * row_h + 2,
            (dur as f64 / length * plot_w).max(1.0),
            row_h - 4,
            esc(&title)
        );
    };
    // Where the run was interrupted and taken over by `swarm resume`.
    for &at in &timeline.resumes {
        let _ = write!(
            out,
            "<line class=\"resumed\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"0\" y2=\"{1}\"><title>resumed here by swarm resume, after an interruption</title></line>",
            x(at),
            height
        );
    }
    for w in &timeline.waits {
        if let Some(&row) = row_of.get(w.task.as_str()) {
            bar(
                out,
                "wait",
                row,
                w.start_ms,
                w.dur_ms,
                format!("{} waited {} for a slot", w.task, seconds(w.dur_ms)),
                "",
            );
        }
    }
    for s in &timeline.spans {
        let row = match (s.track, s.task.as_deref()) {
            (Track::Coordinator, _) => 0,
            (Track::Slot(_), Some(task)) => match row_of.get(task) {
                Some(&r) => r,
                None => continue,
            },
            (Track::Slot(_), None) => continue,
        };
        let on_path = s.track != Track::Coordinator
            && s.task
                .as_deref()
                .and_then(|t| row_of.get(t))
                .is_some_and(|&r| critical.get(r - 1).copied().unwrap_or(false));
        let title = match (&s.task, s.attempt, s.track) {
            (Some(t), Some(a), Track::Slot(n)) => {
                format!(
                    "{t} attempt {a}: {} {} (slot {})",
                    s.phase,
                    seconds(s.dur_ms),
                    n + 1
                )
            }
            (Some(t), _, _) => format!("{} {t}: {}", s.phase, seconds(s.dur_ms)),
            (None, _, _) => format!("{}: {}", s.phase, seconds(s.dur_ms)),
        };
        bar(
            out,
            s.phase,
            row,
            s.start_ms,
            s.dur_ms,
            title,
            if on_path { " critical" } else { "" },
        );
    }
    out.push_str("</svg></section>\n");
}

fn slots(out: &mut String, timeline: &Timeline) {
    let busy = timeline.busy();
    let top = busy.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let (w, h) = (900.0f64, 60.0f64);
    let length = timeline.length_ms.max(1) as f64;
    let mut d = format!("M0 {h}");
    let mut last = 0usize;
    for &(t, n) in &busy {
        let x = t as f64 / length * w;
        let _ = write!(
            d,
            " L{x:.1} {:.1} L{x:.1} {:.1}",
            h - last as f64 / top as f64 * h,
            h - n as f64 / top as f64 * h
        );
        last = n;
    }
    let _ = write!(
        d,
        " L{w} {:.1} L{w} {h} Z",
        h - last as f64 / top as f64 * h
    );
    let _ = writeln!(
        out,
        "<section id=\"slots\"><h2>Slots in use</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"slots in use\"><path class=\"area\" d=\"{d}\"/></svg>\
         <p class=\"muted\">at most {top} at once, over {}</p></section>",
        seconds(timeline.length_ms)
    );
}

fn experiments(out: &mut String, report: &RunReport) {
    let list: Vec<&TaskReport> = report
        .tasks
        .iter()
        .filter(|t| t.experiment.is_some())
        .collect();
    if list.is_empty() {
        return;
    }
    out.push_str("<section id=\"experiments\"><h2>Experiments</h2>\n");
    for t in list {
        let Some(decision) = &t.experiment else {
            continue;
        };
        let _ = write!(
            out,
            "<h3 class=\"mono\">{}</h3><p>pick {} · winner {}</p><table><tr><th>rank</th><th>variant</th><th>values</th><th>status</th><th>score</th><th>why not</th></tr>",
            esc(&t.id),
            esc(&format!("{:?}", decision.pick).to_lowercase()),
            esc(decision.winner.as_deref().unwrap_or("none"))
        );
        for r in &decision.ranking {
            let values = r
                .values
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td><span class=\"badge {s}\">{}</span></td><td>{}</td><td>{}</td></tr>",
                r.rank.map_or("-".to_string(), |n| n.to_string()),
                esc(&r.task),
                esc(&values),
                r.status.as_str(),
                r.score.map_or("-".to_string(), |v| v.to_string()),
                esc(r.ineligible.as_deref().unwrap_or("")),
                s = status_class(r.status),
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

fn run_verify(out: &mut String, report: &RunReport) {
    if report.verify_runs.is_empty() {
        return;
    }
    out.push_str("<section id=\"verify\"><h2>Run-wide verify</h2><table><tr><th>commit</th><th>purpose</th><th>after the merge of</th><th>result</th><th>time</th></tr>");
    for v in &report.verify_runs {
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(crate::git::short(&v.commit)),
            v.purpose.as_str(),
            esc(v.after.as_deref().unwrap_or("(base)")),
            match (v.passed, v.attempt) {
                (true, 0) => "passed",
                (true, _) => "passed (flaky)",
                (false, 0) => "failed",
                (false, _) => "failed again",
            },
            seconds(v.duration_ms)
        );
    }
    out.push_str("</table>");
    if let Some(q) = &report.merge_queue {
        let _ = write!(
            out,
            "<p>Merge queue: {} verify runs, {} flaky, {} run again to reproduce a failure, {} culprits, {} search rounds ({}).</p>",
            q.runs,
            q.flaky_runs,
            q.retry_runs,
            q.culprits,
            q.rounds,
            seconds(q.search_ms)
        );
    }
    if let Some(named) = &report.verify_named {
        let _ = write!(out, "<p>Named: {}</p>", esc(&named.reason));
    }
    for t in report
        .tasks
        .iter()
        .filter(|t| t.status == TaskStatus::BrokeVerify)
    {
        let _ = write!(
            out,
            "<p>Blamed: <a href=\"#task-{id}\" class=\"mono\">{id}</a>: {}</p>",
            esc(t.reason.as_deref().unwrap_or("")),
            id = esc(&t.id)
        );
    }
    out.push_str("</section>\n");
}

fn conflicts(out: &mut String, report: &RunReport) {
    let list: Vec<&TaskReport> = report
        .tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Conflicted)
        .collect();
    if list.is_empty() {
        return;
    }
    out.push_str("<section id=\"conflicts\"><h2>Conflicts</h2>\n");
    for t in list {
        let _ = write!(
            out,
            "<h3 class=\"mono\">{}</h3><p>with {}</p><ul>",
            esc(&t.id),
            esc(&t.conflict_with.join(", "))
        );
        for f in &t.conflict_files {
            let hunks: Vec<String> = t
                .conflict_hunks
                .iter()
                .filter(|h| &h.path == f)
                .map(|h| h.to_string())
                .collect();
            let _ = write!(
                out,
                "<li class=\"mono\">{}{}</li>",
                esc(f),
                if hunks.is_empty() {
                    String::new()
                } else {
                    format!(": {}", esc(&hunks.join("; ")))
                }
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

fn replans(out: &mut String, report: &RunReport) {
    let list: Vec<&TaskReport> = report
        .tasks
        .iter()
        .filter(|t| t.replanned.is_some())
        .collect();
    if list.is_empty() {
        return;
    }
    out.push_str("<section id=\"replans\"><h2>Replanned</h2><ul>");
    for t in list {
        let _ = write!(
            out,
            "<li><span class=\"mono\">{}</span>: {} (subtasks: {})</li>",
            esc(&t.id),
            esc(t.replanned.as_deref().unwrap_or("")),
            esc(&t.subtasks.join(", "))
        );
    }
    out.push_str("</ul></section>\n");
}

fn tasks(out: &mut String, report: &RunReport, logs: &dyn Fn(&TaskReport) -> String) {
    out.push_str("<section id=\"tasks\"><h2>Tasks</h2>\n<table><tr><th>task</th><th>status</th><th>attempts</th><th>time</th><th>model</th><th>files</th><th>ref</th></tr>\n");
    for t in &report.tasks {
        let model = t.agent.as_ref().map_or(String::new(), |a| {
            format!(
                "{} turns, {} tokens, ${:.4}",
                a.turns,
                a.usage.input_tokens + a.usage.output_tokens,
                a.cost_usd
            )
        });
        let files = match &t.diff {
            Some(d) => d.to_string(),
            None => format!("{} changed", t.changed_files.len()),
        };
        let _ = writeln!(
            out,
            "<tr id=\"task-{id}\" class=\"task\"><td class=\"mono\">{id}{kin}</td><td><span class=\"badge {s}\">{st}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            t.attempts,
            seconds(t.duration_ms + t.snapshot_ms),
            esc(&model),
            esc(&files),
            esc(t.git_ref.as_deref().unwrap_or("")),
            id = esc(&t.id),
            s = status_class(t.status),
            st = t.status.as_str(),
            kin = match (&t.parent, &t.variant_of) {
                (Some(p), _) => format!("<br><span class=\"muted\">subtask of {}</span>", esc(p)),
                (None, Some(e)) =>
                    format!("<br><span class=\"muted\">variant of {}</span>", esc(e)),
                (None, None) => String::new(),
            },
        );
        let mut detail = String::new();
        if let Some(reason) = &t.reason {
            let _ = write!(detail, "<p><b>reason</b>: {}</p>", esc(reason));
        }
        for w in &t.warnings {
            let _ = write!(detail, "<p><b>warning</b>: {}</p>", esc(w));
        }
        if let Some(summary) = t
            .agent
            .as_ref()
            .map(|a| &a.summary)
            .filter(|s| !s.is_empty())
        {
            let _ = write!(detail, "<p><b>agent</b>: {}</p>", esc(summary));
        }
        if !t.changed_files.is_empty() {
            let shown: Vec<&str> = t
                .changed_files
                .iter()
                .take(50)
                .map(String::as_str)
                .collect();
            let _ = write!(
                detail,
                "<p class=\"mono\">{}{}</p>",
                esc(&shown.join(" ")),
                if t.changed_files.len() > 50 {
                    format!(" and {} more", t.changed_files.len() - 50)
                } else {
                    String::new()
                }
            );
        }
        let tail = logs(t);
        if !tail.is_empty() {
            let _ = write!(
                detail,
                "<details><summary>output (end)</summary><pre>{}</pre></details>",
                esc(&tail)
            );
        }
        if !detail.is_empty() {
            let _ = writeln!(
                out,
                "<tr class=\"detail\"><td colspan=\"7\">{detail}</td></tr>"
            );
        }
    }
    out.push_str("</table></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_elements_and_attributes() {
        assert_eq!(
            esc("<script>x='\"&'</script>\u{1b}[2J"),
            "&lt;script&gt;x=&#39;&quot;&amp;&#39;&lt;/script&gt;\\x1b[2J"
        );
    }

    #[test]
    fn the_style_is_what_the_policy_allows() {
        let page = render(
            &RunReport {
                v: 1,
                run: "r<b>".into(),
                plan: "p".into(),
                repo: "/r".into(),
                base: "HEAD".into(),
                base_commit: "0123456789abcdef".into(),
                integration_branch: None,
                integration_commit: "0123456789abcdef".into(),
                started_at: "2026-01-01T00:00:00.000Z".into(),
                finished_at: None,
                duration_ms: None,
                exit_code: None,
                tasks: vec![],
                verify_runs: vec![],
                verify_named: None,
                merge_queue: None,
            },
            &Timeline::default(),
            &|_| String::new(),
        );
        let hash =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
        assert!(page.contains(&format!("style-src 'sha256-{hash}'")));
        assert!(page.contains(&format!("<style>{STYLE}</style>")));
        assert!(page.contains("swarm run r&lt;b&gt;"));
        assert!(!page.contains("<script"));
    }
}
