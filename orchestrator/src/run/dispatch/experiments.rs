//! The dispatcher's side of experiments: a variant's end counts towards
//! its experiment's decision instead of blocking anything; `pick =
//! "first"` stops the other variants once one passes; the budget left
//! stops new variants first; and once every variant has ended, the
//! experiment is decided (ranked, picked) and finishes with the winner's
//! result, which its dependents and the merge take from the fold.

use crate::ids::TaskIndex;
use swarm_protocol::experiment::{Pick, Ranked, Saved};
use swarm_protocol::{EventBody, TaskStatus};
use swarm_sandbox::Stop;

use super::super::error::RunError;
use super::super::experiment::{self, Row};
use super::{Dispatcher, Stopping};

impl Dispatcher<'_> {
    /// Variant `i` of experiment `e` ended with `status`.
    pub(super) fn on_variant_done(
        &mut self,
        i: TaskIndex,
        e: TaskIndex,
        status: TaskStatus,
    ) -> Result<(), RunError> {
        let first = self
            .tasks
            .get(e)
            .experiment()
            .is_some_and(|x| x.pick == Pick::First);
        if first && status == TaskStatus::Succeeded && self.slots[e].first_passed.is_none() {
            self.slots[e].first_passed = Some(i);
            self.stop_siblings(e, i)?;
        }
        self.variant_ended(e)
    }

    /// One more variant of `e` ended: decide it once none is left.
    fn variant_ended(&mut self, e: TaskIndex) -> Result<(), RunError> {
        self.slots[e].waiting_on = self.slots[e].waiting_on.saturating_sub(1);
        if self.slots[e].waiting_on == 0 && self.status(e) == TaskStatus::Pending {
            self.decide(e)?;
        }
        self.advance_merges()
    }

    /// `pick = "first"`: variant `winner` passed, so the others of `e` are
    /// not needed: running ones are stopped (their work is kept on their
    /// refs), those not started never start.
    fn stop_siblings(&mut self, e: TaskIndex, winner: TaskIndex) -> Result<(), RunError> {
        let reason = format!(
            "variant `{}` passed first (pick = \"first\")",
            self.tasks.get(winner).id
        );
        let siblings: Vec<TaskIndex> = self.graph.deps(e).filter(|&v| v != winner).collect();
        for v in siblings {
            if self.slots[v].in_flight() {
                self.slots[v].superseded = Some(reason.as_str().into());
                self.executor.cancel(v, Stop::Graceful);
            } else if self.status(v) == TaskStatus::Pending {
                self.emit(EventBody::TaskFinished {
                    task: self.tasks.get(v).id.clone(),
                    status: TaskStatus::Cancelled,
                    reason: Some(reason.clone()),
                })?;
                self.slots[e].waiting_on = self.slots[e].waiting_on.saturating_sub(1);
            }
        }
        Ok(())
    }

    /// Why variant `i` must not start, if the budget left cannot pay for
    /// it: the run's or its experiment's is spent, or has less left than
    /// the dearest finished variant of its experiment cost.
    pub(super) fn budget_stops(&self, i: TaskIndex) -> Option<String> {
        let e = self.slots[i].experiment_of?;
        let task = self.tasks.get(i);
        let agent = task.agent()?;
        let gateway = self.gateway.as_ref()?;
        // Nothing is known of the variants before the run's start.
        self.fold.report()?;
        let (mut tokens, mut usd) = (0, 0.0_f64);
        for v in self.graph.deps(e) {
            if let Some(a) = self.fold.task(v).and_then(|t| t.agent.as_ref()) {
                tokens = tokens.max(a.usage.total());
                usd = usd.max(a.cost_usd);
            }
        }
        let group = gateway.group(&self.tasks.get(e).id, agent.budget);
        let why = gateway
            .run_budget()
            .short_of(tokens, usd)
            .or_else(|| group.short_of(tokens, usd))?;
        Some(format!("not started: {why}"))
    }

    /// A resumed run's experiments' shared budgets start from what their
    /// variants spent before.
    pub(super) fn seed_group_budgets(&self) {
        let Some(gateway) = self.gateway.as_ref() else {
            return;
        };
        for (i, task) in self.tasks.indices().zip(self.tasks.all().iter()) {
            let (Some(e), Some(agent)) = (self.slots[i].experiment_of, task.agent()) else {
                continue;
            };
            if let Some(a) = self.fold.task(i).and_then(|t| t.agent.as_ref()) {
                gateway
                    .group(&self.tasks.get(e).id, agent.budget)
                    .add(a.usage, a.cost_usd);
            }
        }
    }

    /// Every variant of experiment `e` has ended: rank them, pick, and
    /// finish `e` with the winner's result.
    pub(super) fn decide(&mut self, e: TaskIndex) -> Result<(), RunError> {
        let Some(spec) = self.tasks.get(e).experiment().cloned() else {
            return Ok(());
        };
        let variants: Vec<TaskIndex> = self.graph.deps(e).collect();
        let id = self.tasks.get(e).id.clone();
        // Variants the user's Ctrl-C stopped are for `swarm resume` to run
        // again: nothing is decided on part of them.
        if self.stopping == Some(Stopping::Cancel)
            && variants.iter().any(|&v| {
                self.status(v) == TaskStatus::Cancelled && !self.superseded_by_first(e, v)
            })
        {
            self.emit(EventBody::TaskFinished {
                task: id,
                status: TaskStatus::Cancelled,
                reason: Some("the run was cancelled before all its variants ended".into()),
            })?;
            return self.after_finished(e, TaskStatus::Cancelled);
        }
        let rows: Vec<Row> = variants.iter().filter_map(|&v| self.row(v)).collect();
        // A resumed run does not know which passed first: the lowest
        // number of those that did.
        let first = self.slots[e]
            .first_passed
            .or_else(|| {
                variants
                    .iter()
                    .copied()
                    .find(|&v| self.status(v) == TaskStatus::Succeeded)
                    .filter(|_| spec.pick == Pick::First)
            })
            .map(|v| self.tasks.get(v).id.clone());
        let saved = (spec.pick == Pick::First && first.is_some()).then(|| saved(&rows, &first));
        let decision = experiment::decide(spec.pick, spec.scored, rows, first.as_deref(), saved);
        let status = if decision.winner.is_some() || spec.pick == Pick::None {
            TaskStatus::Succeeded
        } else {
            TaskStatus::Failed
        };
        let reason = (status != TaskStatus::Succeeded).then(|| experiment::summary(&decision));
        self.emit(EventBody::ExperimentDecided {
            task: id.clone(),
            decision,
        })?;
        self.emit(EventBody::TaskFinished {
            task: id,
            status,
            reason,
        })?;
        self.after_finished(e, status)
    }

    /// Whether variant `v` of `e` was cancelled because another passed
    /// first, not by the user.
    fn superseded_by_first(&self, e: TaskIndex, v: TaskIndex) -> bool {
        self.slots[e].first_passed.is_some_and(|w| w != v)
    }

    /// What the fold knows of variant `v`, for the ranking.
    fn row(&self, v: TaskIndex) -> Option<Row> {
        let report = self.fold.task(v)?;
        let state = self.fold.state(v);
        let number = self.tasks.get(v).variant().map_or(0, |x| x.number);
        let (tokens, cost_usd) = report
            .agent
            .as_ref()
            .map_or((0, 0.0), |a| (a.usage.total(), a.cost_usd));
        Some(Row {
            ranked: Ranked {
                task: report.id.clone(),
                variant: number,
                values: self
                    .tasks
                    .get(v)
                    .variant()
                    .map(|x| x.values.clone())
                    .unwrap_or_default(),
                rank: None,
                ineligible: None,
                status: self.status(v),
                score: report.score.as_ref().and_then(|s| s.value),
                verify_passed: state.and_then(|s| s.verify_passed),
                tokens,
                cost_usd,
                duration_ms: report.duration_ms,
                diff: report.diff.as_deref().copied(),
                commit: report.commit.clone(),
                git_ref: report.git_ref.clone(),
            },
            score_error: report.score.as_ref().and_then(|s| s.error.clone()),
            reason: report.reason.clone(),
        })
    }
}

/// What stopping the other variants saved, from the ranking's facts: the
/// variants that never started and those stopped while running, what the
/// stopped ones had spent, and an estimate of what running them all to
/// the end would have cost more (each as much as the winner).
fn saved(rows: &[Row], winner: &Option<String>) -> Saved {
    let won = rows
        .iter()
        .find(|r| Some(&r.ranked.task) == winner.as_ref())
        .map(|r| (r.ranked.duration_ms, r.ranked.cost_usd));
    let (won_ms, won_usd) = won.unwrap_or((0, 0.0));
    let mut saved = Saved::default();
    for row in rows
        .iter()
        .filter(|r| r.ranked.status == TaskStatus::Cancelled)
    {
        let r = &row.ranked;
        if r.duration_ms == 0 && r.commit.is_none() {
            saved.not_started.push(r.task.clone());
            saved.estimated_ms += won_ms;
            saved.estimated_cost_usd += won_usd;
        } else {
            saved.stopped.push(r.task.clone());
            saved.stopped_ms += r.duration_ms;
            saved.stopped_tokens += r.tokens;
            saved.stopped_cost_usd += r.cost_usd;
            saved.estimated_ms += won_ms.saturating_sub(r.duration_ms);
            saved.estimated_cost_usd += (won_usd - r.cost_usd).max(0.0);
        }
    }
    saved
}
