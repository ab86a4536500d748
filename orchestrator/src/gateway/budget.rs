//! Spending limits. The run has a budget, and a call may also run under a
//! named [`BudgetScope`] with one of its own: an agent task's, or one that
//! coordinator-side code (a planner) shares between its calls. Every model
//! call takes the same two steps, whoever makes it: [`Gateway::admit`]
//! before (refused once the scope's or the run's budget is spent, its
//! `max_tokens` lowered to what is left of either) and [`Gateway::settle`]
//! after (usage, estimated if the server reported none, priced and added to
//! the scope and the run).

use std::sync::Mutex;

use swarm_protocol::agent::Usage;

use super::stream::Answer;
use super::{Gateway, lock, prices};
use crate::gateway::config::{Budget, ModelConfig};

/// What was spent against a budget.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Spent {
    pub usage: Usage,
    pub usd: f64,
}

/// A named budget and what the calls made under it have spent.
///
/// A call is checked before it starts, so calls made at the same time
/// under one scope can together go past it by their answers, as tasks can
/// with the run's budget; `max_tokens` bounds by how much.
#[derive(Debug)]
pub struct BudgetScope {
    whose: String,
    budget: Budget,
    spent: Mutex<Spent>,
}

impl BudgetScope {
    /// A scope limited by `budget`. `whose` names it in refusals: "the
    /// planner" gives "the planner has used 240 of its 150 tokens".
    pub fn new(whose: impl Into<String>, budget: Budget) -> Self {
        Self {
            whose: whose.into(),
            budget,
            spent: Mutex::new(Spent::default()),
        }
    }

    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// What the calls under this scope have spent: tokens and USD.
    pub fn spent(&self) -> (Usage, f64) {
        let s = lock(&self.spent);
        (s.usage, s.usd)
    }

    /// Why the budget forbids another call, if it does.
    fn refusal(&self) -> Option<String> {
        let spent = *lock(&self.spent);
        let whose = &self.whose;
        if let Some(limit) = self.budget.tokens
            && spent.usage.total() >= limit
        {
            return Some(format!(
                "{whose} has used {} of its {limit} tokens",
                spent.usage.total()
            ));
        }
        if let Some(limit) = self.budget.usd
            && spent.usd >= limit
        {
            return Some(format!(
                "{whose} has spent ${:.4} of its ${limit:.2}",
                spent.usd
            ));
        }
        None
    }

    /// Tokens left, if the budget has a token limit.
    fn tokens_left(&self) -> Option<u32> {
        let total = lock(&self.spent).usage.total();
        self.budget
            .tokens
            .map(|limit| u32::try_from(limit.saturating_sub(total)).unwrap_or(u32::MAX))
    }

    /// Why this budget cannot pay for one more unit of work that costs
    /// about `tokens` and `usd` (what the dearest finished one cost), if
    /// it cannot: what is left is less, or it is spent.
    pub fn short_of(&self, tokens: u64, usd: f64) -> Option<String> {
        if let Some(why) = self.refusal() {
            return Some(why);
        }
        let spent = *lock(&self.spent);
        let whose = &self.whose;
        if let Some(limit) = self.budget.tokens
            && tokens > 0
            && spent.usage.total() + tokens > limit
        {
            return Some(format!(
                "{whose} has {} of its {limit} tokens left, and a variant has used {tokens}",
                limit.saturating_sub(spent.usage.total())
            ));
        }
        if let Some(limit) = self.budget.usd
            && usd > 0.0
            && spent.usd + usd > limit
        {
            return Some(format!(
                "{whose} has ${:.4} of its ${limit:.2} left, and a variant has cost ${usd:.4}",
                (limit - spent.usd).max(0.0)
            ));
        }
        None
    }

    /// Counts what was spent before this scope existed (a resumed run's
    /// finished work).
    pub fn add(&self, usage: Usage, usd: f64) {
        let mut s = lock(&self.spent);
        s.usage.add(usage);
        s.usd += usd;
    }
}

impl Gateway {
    /// Whether a call under `scope` (if any) and the run may be made: the
    /// `max_tokens` it may ask for, at most `wanted` and no more than is
    /// left of either token budget, so that one answer cannot overspend
    /// much; or why not, the scope's refusal first.
    pub(crate) fn admit(&self, scope: Option<&BudgetScope>, wanted: u32) -> Result<u32, String> {
        self.admit_all(scope.as_slice(), wanted)
    }

    /// [`Gateway::admit`] under several scopes at once (a variant's own
    /// and its experiment's).
    pub(crate) fn admit_all(&self, scopes: &[&BudgetScope], wanted: u32) -> Result<u32, String> {
        let mut max_tokens = wanted;
        for budget in scopes.iter().copied().chain([&self.run]) {
            if let Some(why) = budget.refusal() {
                return Err(why);
            }
            if let Some(left) = budget.tokens_left() {
                max_tokens = max_tokens.min(left.max(1));
            }
        }
        Ok(max_tokens)
    }

    /// Counts a call's `answer` against `scope` (if any) and the run: a
    /// server that reports no usage (one that ignores `stream_options`)
    /// must not escape the budgets, so it is estimated at about four bytes
    /// a token from the request's `estimate` and the answer. Returns the
    /// call's cost and whether its usage was estimated.
    pub(crate) fn settle(
        &self,
        config: &ModelConfig,
        answer: &mut Answer,
        estimate: u64,
        scope: Option<&BudgetScope>,
    ) -> (f64, bool) {
        self.settle_all(config, answer, estimate, scope.as_slice())
    }

    /// [`Gateway::settle`] under several scopes at once.
    pub(crate) fn settle_all(
        &self,
        config: &ModelConfig,
        answer: &mut Answer,
        estimate: u64,
        scopes: &[&BudgetScope],
    ) -> (f64, bool) {
        let counted = counted(answer, estimate);
        let estimated = counted != answer.usage;
        answer.usage = counted;
        let usd = prices::cost(
            config.price,
            answer.usage.input_tokens,
            answer.usage.output_tokens,
        );
        for budget in scopes.iter().copied().chain([&self.run]) {
            budget.add(answer.usage, usd);
        }
        (usd, estimated)
    }
}

/// The tokens `answer` cost: as the server reported them, or estimated
/// at about four bytes a token (the request from its `estimate`, the
/// answer from its content) when it reported none, and the answer's part
/// when a stream broke off after the server had said only the prompt's.
pub(crate) fn counted(answer: &Answer, estimate: u64) -> Usage {
    let said = || {
        let bytes: usize = answer
            .content
            .iter()
            .map(|b| serde_json::to_string(b).map_or(0, |t| t.len()))
            .sum();
        bytes as u64 / 4
    };
    let mut usage = answer.usage;
    if usage.total() == 0 {
        usage.input_tokens = estimate;
        usage.output_tokens = said();
    } else if usage.output_tokens == 0 && !answer.content.is_empty() {
        usage.output_tokens = said();
    }
    usage
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    #[test]
    fn short_of_stops_work_the_rest_of_a_budget_cannot_pay_for() {
        let scope = BudgetScope::new(
            "the run",
            Budget {
                tokens: Some(1000),
                usd: Some(1.0),
            },
        );
        assert_eq!(scope.short_of(0, 0.0), None);
        scope.add(
            Usage {
                input_tokens: 600,
                ..Usage::default()
            },
            0.5,
        );
        assert_eq!(scope.short_of(300, 0.1), None);
        let tokens = scope.short_of(500, 0.1).unwrap();
        assert!(
            tokens.contains("has 400 of its 1000 tokens left"),
            "{tokens}"
        );
        let usd = scope.short_of(100, 0.6).unwrap();
        assert!(usd.contains("$0.5000 of its $1.00 left"), "{usd}");
        scope.add(
            Usage {
                input_tokens: 400,
                ..Usage::default()
            },
            0.0,
        );
        assert!(
            scope
                .short_of(0, 0.0)
                .unwrap()
                .contains("used 1000 of its 1000")
        );
    }

    use swarm_protocol::agent::{Block, StopReason};

    use super::*;
    use crate::gateway::config::{Price, Provider};

    fn config() -> ModelConfig {
        let mut config = ModelConfig::for_test(Provider::Anthropic, "http://127.0.0.1:9");
        // One dollar a million tokens, either way.
        config.price = Some(Price {
            input: 1.0,
            output: 1.0,
        });
        config
    }

    fn gateway(run: Budget) -> Gateway {
        let models = BTreeMap::from([("default".to_string(), config())]);
        Gateway::new(&models, &BTreeMap::new(), run).unwrap()
    }

    fn answer(input_tokens: u64, output_tokens: u64) -> Answer {
        Answer {
            content: vec![Block::Text { text: "ok".into() }],
            stop: StopReason::EndTurn,
            usage: Usage {
                input_tokens,
                output_tokens,
            },
        }
    }

    fn tokens(n: u64) -> Budget {
        Budget {
            tokens: Some(n),
            usd: None,
        }
    }

    #[test]
    fn a_scope_and_the_run_both_refuse_and_both_lower_max_tokens() {
        let gw = gateway(tokens(1000));
        let planner = BudgetScope::new("the planner", tokens(150));
        assert_eq!(gw.admit(Some(&planner), 500), Ok(150));
        assert_eq!(gw.admit(None, 5000), Ok(1000));
        gw.settle(&config(), &mut answer(100, 20), 0, Some(&planner));
        assert_eq!(gw.admit(Some(&planner), 500), Ok(30));
        assert_eq!(gw.admit(None, 5000), Ok(880));
        gw.settle(&config(), &mut answer(100, 20), 0, Some(&planner));
        assert_eq!(
            gw.admit(Some(&planner), 500),
            Err("the planner has used 240 of its 150 tokens".into())
        );
        // The run still has room for calls outside the scope.
        assert_eq!(gw.admit(None, 5000), Ok(760));
        gw.settle(&config(), &mut answer(700, 60), 0, None);
        assert_eq!(planner.spent().0.total(), 240);
        assert_eq!(gw.spent().0.total(), 1000);
        // A spent run refuses every call, even one whose scope has room.
        let fresh = BudgetScope::new("task `b`", tokens(10_000));
        assert_eq!(
            gw.admit(Some(&fresh), 500),
            Err("the run has used 1000 of its 1000 tokens".into())
        );
    }

    #[test]
    fn a_usd_scope_refuses_once_its_dollars_are_spent() {
        let gw = gateway(Budget::default());
        let scope = BudgetScope::new(
            "the planner",
            Budget {
                tokens: None,
                usd: Some(0.5),
            },
        );
        let (usd, estimated) = gw.settle(&config(), &mut answer(400_000, 100_000), 0, Some(&scope));
        assert!((usd - 0.5).abs() < 1e-9 && !estimated);
        assert_eq!(
            gw.admit(Some(&scope), 100),
            Err("the planner has spent $0.5000 of its $0.50".into())
        );
        assert_eq!(gw.admit(None, 100), Ok(100));
        assert!((gw.spent().1 - 0.5).abs() < 1e-9);
    }

    #[test]
    fn an_answer_without_usage_is_estimated_for_the_scope_too() {
        let gw = gateway(Budget::default());
        let scope = BudgetScope::new("the planner", tokens(1_000_000));
        let mut unreported = answer(0, 0);
        let (_, estimated) = gw.settle(&config(), &mut unreported, 400, Some(&scope));
        assert!(estimated);
        assert_eq!(unreported.usage.input_tokens, 400);
        assert!(unreported.usage.output_tokens > 0);
        assert_eq!(scope.spent().0, unreported.usage);
        assert_eq!(gw.spent().0, unreported.usage);
    }
}
