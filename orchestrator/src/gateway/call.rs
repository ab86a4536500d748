//! One model call with its retries: paced by the endpoint's limiter, rate
//! limits waited out (never retried before the provider's `retry-after`,
//! and not counted as failures: a rate-limited call waits, it does not fail
//! the task), other failures retried with exponential backoff and jitter up
//! to the model's `retries`.

use std::sync::Arc;
use std::time::Duration;

use swarm_protocol::agent::Usage;
use tokio::time::Instant;

use super::Endpoint;
use super::attempt::attempt;
use super::request::Prepared;
use super::stream::{Answer, Failure};
use super::tape::Reel;

/// Told about every failed attempt that will be retried: why, how long
/// until the next one, and whether it was a rate limit.
pub(crate) type OnRetry<'a> = dyn FnMut(&str, Duration, bool) + Send + 'a;

/// A call that got no answer: why, retries included, and what the
/// attempts that broke off mid-answer had cost (their tokens are paid).
#[derive(Debug)]
pub(crate) struct CallFailed {
    pub message: String,
    pub spent: Usage,
    pub why: FailedBecause,
}

/// What kind of end a failed call had, for what its caller answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailedBecause {
    /// The model's server failed, or retries ran out.
    Failed,
    /// The provider refused the request itself (`Failure::Refused`).
    Refused,
    /// A budget refused it (a cluster's relay: `Failure::Budget`).
    Budget,
    /// A replayed run's cassette had no answer to it.
    NotRecorded,
}

/// Sends `request` to the model until it answers or fails for good. The
/// answer's usage includes what attempts that broke off mid-answer cost.
/// With a `reel`, the call is one turn of its cassette: answered from it
/// when it replays, kept in it when it records.
pub(crate) async fn call(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    request: &Prepared,
    reel: Option<&Arc<Reel>>,
    on_text: &mut (dyn FnMut(&str) + Send),
    on_retry: &mut OnRetry<'_>,
) -> Result<Answer, CallFailed> {
    let retries = endpoint.config.retries;
    let estimate = request.estimate;
    let turn = reel.map_or(0, |r| r.next_turn());
    let mut failures = 0u32;
    let mut limited = 0u32;
    let mut spent = Usage::default();
    loop {
        // A replayed answer needs no slot and no room in the model's
        // buckets: no provider is asked.
        let replaying = reel.is_some_and(|r| r.replays_only());
        let permit = match replaying {
            true => None,
            false => Some(endpoint.limiter.acquire(estimate).await),
        };
        let result = attempt(http, endpoint, request, reel, turn, on_text).await;
        drop(permit);
        let failure = match result {
            Ok(mut answer) => {
                if !replaying {
                    endpoint.limiter.settle(estimate, answer.usage.total());
                }
                answer.usage.add(spent);
                return Ok(answer);
            }
            Err((failure, partial)) => {
                if let Some(partial) = partial {
                    spent.add(super::budget::counted_partial(&partial, estimate));
                }
                failure
            }
        };
        let fail = |why: FailedBecause, message: String| CallFailed {
            message,
            spent,
            why,
        };
        // A refused or failed attempt used none (or an unknown part) of the
        // tokens it reserved; keeping them would stall every later call
        // after a burst of 429s.
        if !replaying {
            endpoint.limiter.settle(estimate, 0);
        }
        match failure {
            Failure::Fatal { message } => return Err(fail(FailedBecause::Failed, message)),
            Failure::Refused { message } => return Err(fail(FailedBecause::Refused, message)),
            Failure::Budget { message } => return Err(fail(FailedBecause::Budget, message)),
            Failure::NotRecorded { message } => {
                return Err(fail(FailedBecause::NotRecorded, message));
            }
            Failure::RateLimited {
                retry_after,
                message,
            } => {
                limited = limited.saturating_add(1);
                let wait = retry_after.unwrap_or_else(|| backoff(limited));
                // Every caller of this model waits, not just this one: the
                // provider's limit is per account.
                endpoint.limiter.cool_down(Instant::now() + wait);
                on_retry(&message, wait, true);
            }
            Failure::Transient {
                retry_after,
                message,
            } => {
                failures += 1;
                if failures > retries {
                    return Err(fail(
                        FailedBecause::Failed,
                        format!(
                            "{message} (gave up after {retries} {})",
                            if retries == 1 { "retry" } else { "retries" }
                        ),
                    ));
                }
                let wait = backoff(failures).max(retry_after.unwrap_or_default());
                if let Some(after) = retry_after {
                    endpoint.limiter.cool_down(Instant::now() + after);
                }
                on_retry(&message, wait, false);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Exponential backoff with jitter: 0.5 s, 1 s, 2 s... up to 30 s, each
/// drawn from the upper half of its range so that retries of many workers
/// spread out but none comes early.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = 500u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(10))
        .min(30_000);
    Duration::from_millis(base / 2 + fastrand::u64(0..=base / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for _ in 0..100 {
            let first = backoff(1);
            assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500));
            let fourth = backoff(4);
            assert!(fourth >= Duration::from_millis(2000) && fourth <= Duration::from_millis(4000));
            assert!(backoff(40) <= Duration::from_secs(30));
        }
    }
}
