//! Spending limits. The run has a budget, and a call may also run under
//! named [`BudgetScope`]s with their own: an agent task's, its experiment's
//! and its ancestors' subtrees, or one that coordinator-side code (a
//! planner) shares between its calls. Every model call takes the same two
//! steps, whoever makes it: [`Gateway::admit`] before and
//! [`Gateway::settle`] after.
//!
//! A call in flight holds the most it can cost (its prompt, estimated at
//! three bytes a token, plus its `max_tokens`, at the model's price)
//! against every budget it counts against, until its answer is settled
//! (usage, estimated if the server reported none, priced and added) or it
//! ends without one. So calls made at the same time cannot together go
//! past a budget: a call whose room is held by others waits for them to
//! settle, and one that would not fit even then is refused. Its
//! `max_tokens` is lowered to what the budgets leave after its prompt.

use std::sync::{Arc, Mutex};

use swarm_protocol::agent::Usage;
use tokio::sync::Notify;

use super::stream::Answer;
use super::{Gateway, lock, prices};
use crate::gateway::config::{Budget, ModelConfig, Price};

/// What was spent against a budget, or is held by calls in flight.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Spent {
    pub usage: Usage,
    pub usd: f64,
}

#[derive(Debug, Default)]
struct Ledger {
    spent: Spent,
    /// Held by calls in flight: how many, their tokens and USD.
    holds: u32,
    held_tokens: u64,
    held_usd: f64,
}

/// A named budget, what the calls made under it have spent and what the
/// calls in flight hold.
#[derive(Debug)]
pub struct BudgetScope {
    whose: String,
    budget: Budget,
    ledger: Mutex<Ledger>,
}

/// What a budget says to a call.
enum Room {
    /// It fits; at most this many tokens of answer.
    Fits(u32),
    /// It would fit once calls in flight settle.
    Wait,
    /// It does not fit, whatever settles: why.
    Refused(String),
}

impl BudgetScope {
    /// A scope limited by `budget`. `whose` names it in refusals: "the
    /// planner" gives "the planner has used 240 of its 150 tokens".
    pub fn new(whose: impl Into<String>, budget: Budget) -> Self {
        Self {
            whose: whose.into(),
            budget,
            ledger: Mutex::new(Ledger::default()),
        }
    }

    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// What the calls under this scope have spent: tokens and USD.
    pub fn spent(&self) -> (Usage, f64) {
        let l = lock(&self.ledger);
        (l.spent.usage, l.spent.usd)
    }

    /// Why the budget forbids another call, if it does.
    fn refusal(&self, spent: Spent) -> Option<String> {
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

    /// Whether a call of about `prompt` tokens, at `price`, fits.
    fn room(&self, prompt: u64, price: Option<Price>) -> Room {
        let l = lock(&self.ledger);
        if let Some(why) = self.refusal(l.spent) {
            return Room::Refused(why);
        }
        let whose = &self.whose;
        let mut fits = u32::MAX;
        if let Some(limit) = self.budget.tokens {
            let spent = l.spent.usage.total();
            // At least one token of answer after the prompt.
            if spent + prompt + 1 > limit {
                return Room::Refused(format!(
                    "{whose} has {} of its {limit} tokens left, less than the call's prompt (about {prompt})",
                    limit - spent
                ));
            }
            if spent + l.held_tokens + prompt + 1 > limit {
                return Room::Wait;
            }
            let left = limit - spent - l.held_tokens - prompt;
            fits = fits.min(u32::try_from(left).unwrap_or(u32::MAX));
        }
        if let (Some(limit), Some(p)) = (self.budget.usd, price) {
            let least = prices::most(Some(p), prompt, 1);
            if l.spent.usd + least > limit {
                return Room::Refused(format!(
                    "{whose} has ${:.4} of its ${limit:.2} left, less than the call's prompt costs (about ${least:.4})",
                    (limit - l.spent.usd).max(0.0)
                ));
            }
            if l.spent.usd + l.held_usd + least > limit {
                return Room::Wait;
            }
            let left = limit - l.spent.usd - l.held_usd - prices::most(Some(p), prompt, 0);
            if p.output > 0.0 {
                let tokens = (left * 1_000_000.0 / p.output).floor().max(1.0);
                fits = fits.min(tokens.min(f64::from(u32::MAX)) as u32);
            }
        }
        Room::Fits(fits)
    }

    fn hold(&self, tokens: u64, usd: f64) {
        let mut l = lock(&self.ledger);
        l.holds += 1;
        l.held_tokens += tokens;
        l.held_usd += usd;
    }

    fn release(&self, tokens: u64, usd: f64) {
        let mut l = lock(&self.ledger);
        l.holds = l.holds.saturating_sub(1);
        l.held_tokens = l.held_tokens.saturating_sub(tokens);
        l.held_usd = (l.held_usd - usd).max(0.0);
        if l.holds == 0 {
            // No rounding left behind for a waiter to wait on forever.
            l.held_tokens = 0;
            l.held_usd = 0.0;
        }
    }

    /// Why this budget cannot pay for one more unit of work that costs
    /// about `tokens` and `usd` (what the dearest finished one cost), if
    /// it cannot: what is left is less, or it is spent.
    pub fn short_of(&self, tokens: u64, usd: f64) -> Option<String> {
        let spent = lock(&self.ledger).spent;
        if let Some(why) = self.refusal(spent) {
            return Some(why);
        }
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

    /// Counts what was spent (a settled call, or a resumed run's finished
    /// work).
    pub fn add(&self, usage: Usage, usd: f64) {
        let mut l = lock(&self.ledger);
        l.spent.usage.add(usage);
        l.spent.usd += usd;
    }
}

/// The room one call in flight holds against its budgets, given back when
/// it is settled or dropped (a call that ended without an answer).
pub(crate) struct Hold {
    scopes: Vec<Arc<BudgetScope>>,
    tokens: u64,
    usd: f64,
    freed: Arc<Notify>,
    /// The most tokens of answer the call may ask for.
    pub max_tokens: u32,
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold")
            .field("tokens", &self.tokens)
            .field("usd", &self.usd)
            .finish_non_exhaustive()
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        for scope in &self.scopes {
            scope.release(self.tokens, self.usd);
        }
        self.freed.notify_waiters();
    }
}

/// The tokens a request of `bytes` holds for its prompt: three bytes a
/// token, fewer than most text and code take, so that a hold covers the
/// prompt the provider will count.
pub(crate) fn prompt_hold(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(3)
}

impl Gateway {
    /// Admits a call under `scopes` (and the run's budget) whose prompt is
    /// about `prompt` tokens, asking for at most `wanted` tokens of answer,
    /// at `price`: holds what it can cost and says how many tokens of
    /// answer the budgets leave it; waits while calls in flight hold the
    /// room it needs; refuses, the first refusing budget's reason, when it
    /// would not fit whatever they spend.
    pub(crate) async fn admit(
        &self,
        scopes: &[Arc<BudgetScope>],
        wanted: u32,
        prompt: u64,
        price: Option<Price>,
    ) -> Result<Hold, String> {
        let all: Vec<Arc<BudgetScope>> = scopes
            .iter()
            .cloned()
            .chain([Arc::clone(&self.run)])
            .collect();
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Told of every release from here on, even one before the wait.
            freed.as_mut().enable();
            {
                // One admission at a time: the check and the hold of every
                // budget together.
                let _one = lock(&self.admitting);
                let mut max_tokens = wanted.max(1);
                let mut wait = false;
                for scope in &all {
                    match scope.room(prompt, price) {
                        Room::Refused(why) => return Err(why),
                        Room::Wait => wait = true,
                        Room::Fits(n) => max_tokens = max_tokens.min(n.max(1)),
                    }
                }
                if !wait {
                    let tokens = prompt + u64::from(max_tokens);
                    let usd = prices::most(price, prompt, u64::from(max_tokens));
                    for scope in &all {
                        scope.hold(tokens, usd);
                    }
                    return Ok(Hold {
                        scopes: all,
                        tokens,
                        usd,
                        freed: Arc::clone(&self.freed),
                        max_tokens,
                    });
                }
            }
            freed.await;
        }
    }

    /// Counts a call's `answer` against the budgets `hold` holds room in,
    /// and gives the room back: a server that reports no usage (one that
    /// ignores `stream_options`) must not escape the budgets, so it is
    /// estimated at about four bytes a token from the request's `estimate`
    /// and the answer. Returns the call's cost and whether its usage was
    /// estimated.
    pub(crate) fn settle(
        &self,
        config: &ModelConfig,
        answer: &mut Answer,
        estimate: u64,
        hold: Hold,
    ) -> (f64, bool) {
        let counted = counted(answer, estimate);
        let estimated = counted != answer.usage;
        answer.usage = counted;
        let usd = prices::cost_of(config.price, &answer.usage);
        // Spent before the room is given back: a waiting call never sees
        // neither.
        for budget in &hold.scopes {
            budget.add(answer.usage, usd);
        }
        drop(hold);
        (usd, estimated)
    }
}

/// The tokens an answer that broke off cost: what the server had reported,
/// or what had arrived of it (at about four bytes a token) when that is
/// more, since its count of output comes only at the end.
pub(crate) fn counted_partial(answer: &Answer, estimate: u64) -> Usage {
    let mut usage = counted(answer, estimate);
    usage.output_tokens = usage.output_tokens.max(said(answer));
    usage
}

/// About how many tokens the answer's content is: its text and its tool
/// calls' names and arguments, four bytes a token.
fn said(answer: &Answer) -> u64 {
    use swarm_protocol::agent::Block;
    let bytes: usize = answer
        .content
        .iter()
        .map(|b| match b {
            Block::Text { text } => text.len(),
            Block::ToolCall { name, input, .. } => name.len() + input.to_string().len(),
            Block::ToolResult { content, .. } => content.len(),
        })
        .sum();
    (bytes as u64).div_ceil(4)
}

/// The tokens `answer` cost: as the server reported them, or estimated
/// at about four bytes a token (the request from its `estimate`, the
/// answer from its content) when it reported none, and the answer's part
/// when a stream broke off after the server had said only the prompt's.
pub(crate) fn counted(answer: &Answer, estimate: u64) -> Usage {
    let mut usage = answer.usage;
    if usage.total() == 0 {
        usage.input_tokens = estimate;
        usage.output_tokens = said(answer);
    } else if usage.output_tokens == 0 && !answer.content.is_empty() {
        usage.output_tokens = said(answer);
    }
    usage
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use swarm_protocol::agent::{Block, StopReason};

    use super::*;
    use crate::gateway::config::Provider;

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

    /// One dollar a million tokens, either way.
    const PRICE: Price = Price::new(1.0, 1.0);

    fn config() -> ModelConfig {
        let mut config = ModelConfig::for_test(Provider::Anthropic, "http://127.0.0.1:9");
        config.price = Some(PRICE);
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
                ..Usage::default()
            },
        }
    }

    fn tokens(n: u64) -> Budget {
        Budget {
            tokens: Some(n),
            usd: None,
        }
    }

    fn scope(whose: &str, budget: Budget) -> Arc<BudgetScope> {
        Arc::new(BudgetScope::new(whose, budget))
    }

    #[tokio::test]
    async fn a_call_holds_its_prompt_and_max_tokens_until_it_settles() {
        let gw = gateway(tokens(1000));
        let planner = scope("the planner", tokens(150));
        let first = gw
            .admit(std::slice::from_ref(&planner), 500, 10, None)
            .await
            .unwrap();
        // What the prompt leaves of the planner's 150.
        assert_eq!(first.max_tokens, 140);
        // The planner's room is held: a second call waits for it...
        let scopes = [planner.clone()];
        let second = gw.admit(&scopes, 500, 10, None);
        tokio::pin!(second);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), second.as_mut())
                .await
                .is_err()
        );
        // ...and is admitted with what the first left once it settles.
        gw.settle(&config(), &mut answer(100, 20), 0, first);
        let second = second.await.unwrap();
        assert_eq!(second.max_tokens, 20);
        // Calls outside the scope only see the run's budget: 1000 less
        // 120 spent and 30 held.
        let outside = gw.admit(&[], 5000, 10, None).await.unwrap();
        assert_eq!(outside.max_tokens, 840);
        drop(second);
        drop(outside);
        // Not even a prompt fits: refused, not kept waiting.
        gw.settle(
            &config(),
            &mut answer(20, 10),
            0,
            gw.admit(std::slice::from_ref(&planner), 5, 10, None)
                .await
                .unwrap(),
        );
        assert_eq!(
            gw.admit(std::slice::from_ref(&planner), 500, 10, None)
                .await
                .unwrap_err(),
            "the planner has used 150 of its 150 tokens"
        );
        let fresh = scope("task `b`", tokens(10_000));
        let err = gw.admit(&[fresh], 500, 900, None).await.unwrap_err();
        assert_eq!(
            err,
            "the run has 850 of its 1000 tokens left, less than the call's prompt (about 900)"
        );
    }

    #[tokio::test]
    async fn a_usd_budget_lowers_max_tokens_to_what_it_can_pay_and_refuses_once_spent() {
        let gw = gateway(Budget::default());
        let planner = scope(
            "the planner",
            Budget {
                tokens: None,
                usd: Some(0.5),
            },
        );
        let hold = gw
            .admit(
                std::slice::from_ref(&planner),
                1_000_000,
                100_000,
                Some(PRICE),
            )
            .await
            .unwrap();
        // $0.50 buys 500,000 tokens: 100,000 of prompt, 400,000 of answer.
        assert_eq!(hold.max_tokens, 400_000);
        let (usd, estimated) = gw.settle(&config(), &mut answer(400_000, 100_000), 0, hold);
        assert!((usd - 0.5).abs() < 1e-9 && !estimated);
        assert_eq!(
            gw.admit(&[planner], 100, 10, Some(PRICE))
                .await
                .unwrap_err(),
            "the planner has spent $0.5000 of its $0.50"
        );
        assert!(gw.admit(&[], 100, 10, Some(PRICE)).await.is_ok());
        assert!((gw.spent().1 - 0.5).abs() < 1e-9);
    }

    #[tokio::test]
    async fn calls_at_once_never_spend_past_the_budget() {
        // Room for five calls of 100 prompt and 20 answer tokens, asking
        // for up to 50 each.
        let gw = Arc::new(gateway(tokens(5 * 150)));
        let mut calls = Vec::new();
        for _ in 0..20 {
            let gw = Arc::clone(&gw);
            calls.push(tokio::spawn(async move {
                let hold = gw.admit(&[], 50, 100, None).await?;
                tokio::time::sleep(Duration::from_millis(5)).await;
                let mut answered = answer(100, hold.max_tokens.min(20).into());
                gw.settle(&config(), &mut answered, 0, hold);
                Ok::<_, String>(())
            }));
        }
        let mut done = 0;
        for call in calls {
            if call.await.unwrap().is_ok() {
                done += 1;
            }
        }
        let spent = gw.spent().0.total();
        assert!(spent <= 750, "spent {spent} of 750");
        assert!(done >= 5, "{done} calls were admitted");
    }

    #[tokio::test]
    async fn a_dropped_call_gives_its_room_back() {
        let gw = gateway(tokens(200));
        let hold = gw.admit(&[], 150, 40, None).await.unwrap();
        assert_eq!(hold.max_tokens, 150);
        drop(hold);
        assert_eq!(gw.admit(&[], 500, 40, None).await.unwrap().max_tokens, 160);
    }

    #[tokio::test]
    async fn an_answer_without_usage_is_estimated_for_the_scope_too() {
        let gw = gateway(Budget::default());
        let planner = scope("the planner", tokens(1_000_000));
        let hold = gw
            .admit(std::slice::from_ref(&planner), 100, 10, None)
            .await
            .unwrap();
        let mut unreported = answer(0, 0);
        let (_, estimated) = gw.settle(&config(), &mut unreported, 400, hold);
        assert!(estimated);
        assert_eq!(unreported.usage.input_tokens, 400);
        assert!(unreported.usage.output_tokens > 0);
        assert_eq!(planner.spent().0, unreported.usage);
        assert_eq!(gw.spent().0, unreported.usage);
    }

    #[test]
    fn a_stream_cut_after_the_prompt_counts_the_answer_that_came() {
        // The provider said the prompt and one token of answer at the
        // start; 400 bytes of answer came before the cut.
        let mut cut = answer(1000, 1);
        cut.content = vec![Block::Text {
            text: "x".repeat(400),
        }];
        let usage = counted_partial(&cut, 0);
        assert_eq!(usage.input_tokens, 1000);
        assert_eq!(usage.output_tokens, 100);
        // A whole answer's reported count stands.
        assert_eq!(counted(&cut, 0).output_tokens, 1);
    }

    #[tokio::test]
    async fn a_usd_waiter_is_not_kept_waiting_by_rounding_once_every_hold_is_gone() {
        let gw = gateway(Budget {
            tokens: None,
            usd: Some(1.0),
        });
        let price = Price::new(0.3, 0.7);
        for _ in 0..1000 {
            let hold = gw.admit(&[], 7, 13, Some(price)).await.unwrap();
            drop(hold);
        }
        let run = &gw.run;
        let l = lock(&run.ledger);
        assert_eq!((l.holds, l.held_tokens, l.held_usd), (0, 0, 0.0));
    }
}
