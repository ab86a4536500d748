//! Where a run's time went, from its journal: each attempt's phases on
//! the slot it ran in, the coordinator's own work (merges, the run-wide
//! verify) on a track of its own, and how long each task waited for a
//! slot. The HTML report draws it; `swarm trace` writes it as Chrome trace
//! events (Perfetto, `chrome://tracing`).
//!
//! Times are the journal's (milliseconds since the run's first event). An
//! attempt's phases are what the journal can tell apart: `setup` (the
//! plan's `[setup]` in its fresh worktree, just before its start), `start`
//! (its worktree's link, up to the command), `run` (the command), `verify` and
//! `score` (their own times; with `run`, the attempt's `duration_ms`; an
//! agent's verify rounds cut its `run` where they happened) and
//! `snapshot`; a merge
//! lasts from the later of its task's end and the coordinator's previous
//! work to its `task_merged`.

use std::collections::HashMap;
use std::time::SystemTime;

use serde_json::{Value, json};
use swarm_protocol::{Event, EventBody};

/// Whose work a span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Track {
    /// A worker slot (numbered from 0): one attempt at a time.
    Slot(usize),
    /// The coordinator: merges, the run-wide verify.
    Coordinator,
}

/// One stretch of work.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub track: Track,
    /// `setup`, `start`, `run`, `verify`, `score`, `snapshot` (an
    /// attempt's);
    /// `merge`, `verify`, `flush` (the coordinator's).
    pub phase: &'static str,
    /// The task (for `verify`, the task whose merge it checked, if any).
    pub task: Option<String>,
    pub attempt: Option<u32>,
    /// Milliseconds since the run's start.
    pub start_ms: u64,
    pub dur_ms: u64,
}

impl Span {
    pub fn end_ms(&self) -> u64 {
        self.start_ms + self.dur_ms
    }
}

/// A task's wait for a slot: from `task_queued` to its first start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub task: String,
    pub start_ms: u64,
    pub dur_ms: u64,
}

/// A run's time, laid out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    /// Milliseconds from the run's first event to its last.
    pub length_ms: u64,
    pub spans: Vec<Span>,
    pub waits: Vec<Wait>,
    /// How many slots the attempts needed.
    pub slots: usize,
    /// The run's first event, in milliseconds since the Unix epoch.
    pub origin_unix_ms: u64,
    /// When `swarm resume` took the run over (milliseconds since its
    /// start), once per interruption.
    pub resumes: Vec<u64>,
}

/// Milliseconds since the epoch of a journal time stamp.
fn millis(ts: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(ts).ok()?;
    let d = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_millis()).ok()
}

impl Timeline {
    /// Puts the journal's flushes to the disk (see [`crate::flushes`]) on
    /// the coordinator's track: a `flush` span each, at least a
    /// millisecond long so that it shows.
    pub fn with_flushes(mut self, flushes: &[crate::flushes::Flush]) -> Timeline {
        if self.origin_unix_ms == 0 {
            return self;
        }
        for f in flushes {
            let start_ms = f.at_unix_ms.saturating_sub(self.origin_unix_ms);
            let dur_ms = f.dur_us.div_ceil(1000).max(1);
            // A flush of a resumed run's journal after the last event, or
            // of another run's with the same name before it, is not drawn.
            if f.at_unix_ms < self.origin_unix_ms || start_ms >= self.length_ms {
                continue;
            }
            self.spans.push(Span {
                track: Track::Coordinator,
                phase: "flush",
                task: None,
                attempt: None,
                start_ms,
                dur_ms: dur_ms.min(self.length_ms - start_ms).max(1),
            });
        }
        self
    }

    /// The timeline of the run whose journal is `events`.
    pub fn of(events: &[Event]) -> Timeline {
        let Some(origin) = events.iter().find_map(|e| millis(&e.ts)) else {
            return Timeline::default();
        };
        let at = |e: &Event| millis(&e.ts).map_or(0, |t| t.saturating_sub(origin));
        let mut timeline = Timeline {
            origin_unix_ms: origin,
            ..Timeline::default()
        };
        let mut queued: HashMap<&str, u64> = HashMap::new();
        let mut started: HashMap<(&str, u32), u64> = HashMap::new();
        // `[setup]` of an attempt: how long, before its start.
        let mut set_up: HashMap<(&str, u32), u64> = HashMap::new();
        let mut ended: HashMap<&str, u64> = HashMap::new();
        // Attempts as (start, end, phases), placed on slots afterwards.
        let mut attempts: Vec<(u64, u64, Vec<Span>)> = Vec::new();
        let mut coordinator_free = 0u64;
        for event in events {
            let now = at(event);
            timeline.length_ms = timeline.length_ms.max(now);
            match &event.body {
                EventBody::TaskQueued { task } => {
                    queued.entry(task).or_insert(now);
                }
                EventBody::RunResumed { .. } => timeline.resumes.push(now),
                EventBody::TaskStarted {
                    task,
                    attempt,
                    setup_run,
                    ..
                } => {
                    started.insert((task, *attempt), now);
                    if let Some(run) = setup_run {
                        set_up.insert((task, *attempt), run.ms.min(now));
                    }
                    if let Some(q) = queued.remove(task.as_str()) {
                        timeline.waits.push(Wait {
                            task: task.clone(),
                            start_ms: q,
                            dur_ms: now.saturating_sub(q),
                        });
                    }
                }
                EventBody::AttemptFinished {
                    task,
                    attempt,
                    duration_ms,
                    snapshot_ms,
                    verify_ms,
                    score,
                    agent,
                    ..
                } => {
                    let start = started.remove(&(task.as_str(), *attempt)).unwrap_or(now);
                    let wall = now.saturating_sub(start);
                    let snapshot = snapshot_ms.unwrap_or(0).min(wall);
                    // The journal's clock and the attempt's own may differ
                    // by a millisecond: the run phase never exceeds the wall.
                    let run = (*duration_ms).min(wall - snapshot);
                    let setup = wall - snapshot - run;
                    // The command, then its verify, then a variant's score,
                    // all within `duration_ms`.
                    let verify = verify_ms.unwrap_or(0).min(run);
                    let scored = score
                        .as_ref()
                        .map_or(0, |s| s.duration_ms)
                        .min(run - verify);
                    let command = run - verify - scored;
                    let phase = |phase, start_ms, dur_ms| Span {
                        track: Track::Slot(0),
                        phase,
                        task: Some(task.clone()),
                        attempt: Some(*attempt),
                        start_ms,
                        dur_ms,
                    };
                    let mut phases = Vec::new();
                    // `[setup]` ran just before the start, in the slot.
                    let prepared = set_up.remove(&(task.as_str(), *attempt)).unwrap_or(0);
                    if prepared > 0 {
                        phases.push(phase("setup", start - prepared, prepared));
                    }
                    if setup > 0 {
                        phases.push(phase("start", start, setup));
                    }
                    // An agent's verify runs inside its session, each time
                    // it says it is done: the command's time is cut there.
                    let rounds = agent.as_ref().map_or(&[][..], |a| &a.verify_rounds[..]);
                    let mut at = 0;
                    for round in rounds {
                        let from = round.at_ms.clamp(at, command);
                        let to = from.saturating_add(round.dur_ms).min(command);
                        if from > at {
                            phases.push(phase("run", start + setup + at, from - at));
                        }
                        if to > from {
                            phases.push(phase("verify", start + setup + from, to - from));
                        }
                        at = to;
                    }
                    if at < command || rounds.is_empty() {
                        phases.push(phase("run", start + setup + at, command - at));
                    }
                    if verify > 0 {
                        phases.push(phase("verify", start + setup + command, verify));
                    }
                    if scored > 0 {
                        phases.push(phase("score", start + setup + command + verify, scored));
                    }
                    if snapshot > 0 {
                        phases.push(phase("snapshot", start + setup + run, snapshot));
                    }
                    attempts.push((start - prepared, now, phases));
                    ended.insert(task, now);
                }
                EventBody::TaskMerged { task, .. } => {
                    let from = ended
                        .get(task.as_str())
                        .copied()
                        .unwrap_or(now)
                        .max(coordinator_free)
                        .min(now);
                    let now = now.max(coordinator_free);
                    let task = Some(task.clone());
                    timeline.coordinator(&mut coordinator_free, "merge", task, (from, now));
                }
                EventBody::RunVerified { run } => {
                    let now = now.max(coordinator_free);
                    // A clock stepped back must not make a span end
                    // before it starts.
                    let from = now
                        .saturating_sub(run.duration_ms)
                        .max(coordinator_free)
                        .min(now);
                    let task = run.after.clone();
                    timeline.coordinator(&mut coordinator_free, "verify", task, (from, now));
                }
                _ => {}
            }
        }
        timeline.place(attempts);
        timeline
    }

    /// Puts each attempt (start, end, its phases) on the lowest slot free
    /// when it starts.
    fn place(&mut self, mut attempts: Vec<(u64, u64, Vec<Span>)>) {
        attempts.sort_by_key(|(start, end, _)| (*start, *end));
        let mut free_at: Vec<u64> = Vec::new();
        for (start, end, phases) in attempts {
            let slot = match free_at.iter().position(|&f| f <= start) {
                Some(slot) => slot,
                None => {
                    free_at.push(0);
                    free_at.len() - 1
                }
            };
            if let Some(free) = free_at.get_mut(slot) {
                *free = end;
            }
            self.spans.extend(phases.into_iter().map(|s| Span {
                track: Track::Slot(slot),
                ..s
            }));
        }
        self.slots = free_at.len();
        self.spans.sort_by_key(|s| (s.track, s.start_ms));
    }

    /// The coordinator's `phase` (of `task`) from `from` to `now`, which
    /// frees it then.
    fn coordinator(
        &mut self,
        free: &mut u64,
        phase: &'static str,
        task: Option<String>,
        (from, now): (u64, u64),
    ) {
        self.spans.push(Span {
            track: Track::Coordinator,
            phase,
            task,
            attempt: None,
            start_ms: from,
            dur_ms: now - from,
        });
        *free = now;
    }

    /// How many slots were busy over time: (time, busy) at each change.
    pub fn busy(&self) -> Vec<(u64, usize)> {
        let mut changes: Vec<(u64, i64)> = Vec::new();
        let mut by_attempt: HashMap<(usize, &str, u32), (u64, u64)> = HashMap::new();
        for s in &self.spans {
            if let (Track::Slot(slot), Some(task), Some(attempt)) = (s.track, &s.task, s.attempt) {
                let e = by_attempt
                    .entry((slot, task.as_str(), attempt))
                    .or_insert((s.start_ms, s.end_ms()));
                e.0 = e.0.min(s.start_ms);
                e.1 = e.1.max(s.end_ms());
            }
        }
        for (start, end) in by_attempt.values() {
            changes.push((*start, 1));
            changes.push((*end, -1));
        }
        changes.sort();
        let mut busy = 0i64;
        let mut out: Vec<(u64, usize)> = vec![(0, 0)];
        for (t, d) in changes {
            busy += d;
            let n = usize::try_from(busy.max(0)).unwrap_or(0);
            match out.last_mut() {
                Some(last) if last.0 == t => last.1 = n,
                _ => out.push((t, n)),
            }
        }
        out
    }

    /// The timeline as Chrome trace events (the JSON object format), as
    /// text: one thread per slot and one for the coordinator, complete
    /// (`X`) events in microseconds, and each task's wait as an async span
    /// (`b`/`e`) of its own. Written event by event: a run of 10,000 tasks
    /// has some 50,000 of them.
    pub fn chrome_trace(&self, run: &str) -> String {
        let tid = |t: Track| match t {
            Track::Slot(n) => n as u64 + 1,
            Track::Coordinator => 0,
        };
        let mut out = String::with_capacity(128 + self.spans.len() * 160);
        out.push_str("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[");
        let mut first = true;
        let mut push = |event: Value| {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&event.to_string());
        };
        push(json!({
            "ph": "M", "name": "process_name", "pid": 1, "tid": 0,
            "args": {"name": format!("swarm run {run}")}
        }));
        push(json!({
            "ph": "M", "name": "thread_name", "pid": 1, "tid": 0,
            "args": {"name": "coordinator"}
        }));
        for n in 0..self.slots {
            push(json!({
                "ph": "M", "name": "thread_name", "pid": 1, "tid": n as u64 + 1,
                "args": {"name": format!("slot {}", n + 1)}
            }));
        }
        for s in &self.spans {
            let name = match (&s.task, s.attempt) {
                (Some(task), Some(attempt)) => format!("{} {task} #{attempt}", s.phase),
                (Some(task), None) => format!("{} {task}", s.phase),
                (None, _) => s.phase.to_string(),
            };
            push(json!({
                "ph": "X", "pid": 1, "tid": tid(s.track), "name": name, "cat": s.phase,
                "ts": s.start_ms * 1000, "dur": s.dur_ms * 1000,
                "args": {"task": s.task, "attempt": s.attempt},
            }));
        }
        for (i, w) in self.waits.iter().enumerate() {
            let name = format!("wait {}", w.task);
            push(
                json!({"ph": "b", "pid": 1, "cat": "wait", "name": name, "id": i, "ts": w.start_ms * 1000}),
            );
            push(
                json!({"ph": "e", "pid": 1, "cat": "wait", "name": name, "id": i, "ts": (w.start_ms + w.dur_ms) * 1000}),
            );
        }
        out.push_str("]}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_protocol::{AttemptOutcome, SCHEMA_VERSION};

    fn event(ms: u64, body: EventBody) -> Event {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_000 + ms);
        Event {
            v: SCHEMA_VERSION,
            ts: humantime::format_rfc3339_millis(t).to_string(),
            body,
        }
    }

    fn finished(task: &str, attempt: u32, duration_ms: u64, snapshot_ms: u64) -> EventBody {
        EventBody::AttemptFinished {
            task: task.into(),
            attempt,
            outcome: AttemptOutcome::Exited { code: 0 },
            verify_passed: None,
            duration_ms,
            commit: None,
            git_ref: None,
            changed_files: vec![],
            skipped_files: vec![],
            outside_paths: vec![],
            snapshot_ms: Some(snapshot_ms),
            verify_ms: None,
            agent: None,
            score: None,
            diff: None,
        }
    }

    fn started(task: &str, attempt: u32) -> EventBody {
        EventBody::TaskStarted {
            task: task.into(),
            attempt,
            base_commit: "b".into(),
            workdir: "w".into(),
            job: None,
            setup_ms: None,
            setup_run: None,
            max_file_size: None,
        }
    }

    #[test]
    fn journal_flushes_go_on_the_coordinators_track_within_the_run() {
        use crate::flushes::Flush;
        let events = vec![
            event(0, started("a", 1)),
            event(50, finished("a", 1, 40, 0)),
        ];
        let origin = 1_700_000_000_000;
        let flush = |at, dur_us| Flush {
            at_unix_ms: origin + at,
            dur_us,
        };
        let t = Timeline::of(&events).with_flushes(&[
            flush(10, 2_400),
            // Under a millisecond: drawn as one.
            flush(20, 30),
            // Ends past the run's last event: cut there.
            flush(49, 5_000),
            // Another run's, before this one's start, or after its end.
            Flush {
                at_unix_ms: origin - 5,
                dur_us: 10,
            },
            flush(80, 10),
        ]);
        let flushes: Vec<_> = t
            .spans
            .iter()
            .filter(|s| s.phase == "flush")
            .map(|s| (s.track, s.start_ms, s.dur_ms))
            .collect();
        assert_eq!(
            flushes,
            [
                (Track::Coordinator, 10, 3),
                (Track::Coordinator, 20, 1),
                (Track::Coordinator, 49, 1)
            ]
        );
    }

    #[test]
    fn an_agents_verify_rounds_cut_its_run_where_they_happened() {
        use swarm_protocol::agent::{AgentOutcome, AgentReport, VerifyRound};
        let mut body = finished("fix", 1, 100, 0);
        if let EventBody::AttemptFinished { agent, .. } = &mut body {
            let round = |at_ms, dur_ms, passed| VerifyRound {
                at_ms,
                dur_ms,
                passed,
            };
            *agent = Some(Box::new(AgentReport {
                outcome: AgentOutcome::Finished,
                summary: String::new(),
                turns: 3,
                repair_rounds: 1,
                usage: Default::default(),
                cost_usd: 0.0,
                transcript: None,
                detail: None,
                output: None,
                // The second round ends past the command's time (clocks
                // a millisecond apart): it is cut at the command's end.
                verify_rounds: vec![round(40, 10, false), round(92, 20, true)],
            }));
        }
        let events = vec![event(0, started("fix", 1)), event(100, body)];
        let t = Timeline::of(&events);
        let phases: Vec<_> = t
            .spans
            .iter()
            .map(|s| (s.phase, s.start_ms, s.dur_ms))
            .collect();
        assert_eq!(
            phases,
            [
                ("run", 0, 40),
                ("verify", 40, 10),
                ("run", 50, 42),
                ("verify", 92, 8),
            ]
        );
    }

    #[test]
    fn attempts_are_split_into_phases_on_slots_that_never_overlap() {
        let events = vec![
            event(0, EventBody::TaskQueued { task: "a".into() }),
            event(0, EventBody::TaskQueued { task: "b".into() }),
            event(0, EventBody::TaskQueued { task: "c".into() }),
            event(2, started("a", 1)),
            event(3, started("b", 1)),
            event(100, finished("a", 1, 90, 5)),
            event(101, started("c", 1)),
            event(150, finished("b", 1, 140, 0)),
            event(
                160,
                EventBody::TaskMerged {
                    task: "a".into(),
                    commit: "x".into(),
                    integration_commit: "y".into(),
                    resolved: false,
                },
            ),
            event(200, finished("c", 1, 99, 0)),
        ];
        let t = Timeline::of(&events);
        assert_eq!(t.slots, 2);
        assert_eq!(t.length_ms, 200);
        let a: Vec<_> = t
            .spans
            .iter()
            .filter(|s| s.task.as_deref() == Some("a"))
            .collect();
        let phases: Vec<_> = a.iter().map(|s| (s.phase, s.start_ms, s.dur_ms)).collect();
        assert_eq!(
            phases,
            [
                ("start", 2, 3),
                ("run", 5, 90),
                ("snapshot", 95, 5),
                ("merge", 100, 60)
            ]
        );
        // c took a's slot once a was done.
        let slot = |task: &str| {
            t.spans
                .iter()
                .find(|s| s.task.as_deref() == Some(task) && s.phase == "run")
                .map(|s| s.track)
        };
        assert_eq!(slot("c"), slot("a"));
        assert_ne!(slot("b"), slot("a"));
        assert_eq!(t.waits.len(), 3);
        assert_eq!(t.busy().iter().map(|b| b.1).max(), Some(2));
        let trace: Value = serde_json::from_str(&t.chrome_trace("r")).unwrap();
        assert!(trace["traceEvents"].as_array().unwrap().len() > 8);
    }
}
