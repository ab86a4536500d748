//! Pacing of calls to one model, shared by every task of a run: a cap on
//! calls in flight, token buckets for the account's requests and tokens per
//! minute, and a cool-down after a rate-limit answer that holds back every
//! caller (not just the one that was refused) until the provider's
//! `retry-after` has passed. That is what keeps a fan-out of many agents
//! from hammering a provider that has said "wait".

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::gateway::config::ModelConfig;

/// A token bucket: up to `capacity` at once, refilled at `per_sec`. Its
/// level may go below zero when a call turned out bigger than estimated;
/// later calls then wait for the debt to be paid.
#[derive(Debug)]
struct Bucket {
    capacity: f64,
    level: f64,
    per_sec: f64,
    at: Instant,
}

impl Bucket {
    /// A bucket for `limit` a minute that holds one second's worth: calls
    /// are spread evenly instead of a minute's allowance going at once,
    /// which providers that count by the second (or a fan-out of a
    /// hundred agents) would answer with 429s.
    fn per_minute(limit: f64, now: Instant) -> Self {
        let capacity = (limit / 60.0).max(1.0);
        Self {
            capacity,
            level: capacity,
            per_sec: limit / 60.0,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + dt * self.per_sec).min(self.capacity);
        self.at = now;
    }

    /// How long until `amount` (clamped to the capacity) is available.
    fn wait_for(&self, amount: f64) -> Duration {
        let need = amount.min(self.capacity) - self.level;
        if need <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(need / self.per_sec)
        }
    }
}

#[derive(Debug)]
struct State {
    cool_until: Option<Instant>,
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

/// The pacing of one model endpoint.
#[derive(Debug)]
pub(crate) struct Limiter {
    slots: std::sync::Arc<Semaphore>,
    state: Mutex<State>,
}

impl Limiter {
    pub fn new(config: &ModelConfig) -> Self {
        let now = Instant::now();
        Self {
            slots: std::sync::Arc::new(Semaphore::new(config.concurrency.max(1))),
            state: Mutex::new(State {
                cool_until: None,
                requests: config
                    .requests_per_minute
                    .map(|r| Bucket::per_minute(f64::from(r), now)),
                tokens: config
                    .tokens_per_minute
                    .map(|t| Bucket::per_minute(t as f64, now)),
            }),
        }
    }

    /// Waits for a slot, the end of any cool-down and room in the buckets
    /// for one request of about `tokens` tokens, and takes them. The permit
    /// is the slot: hold it for the whole call.
    pub async fn acquire(&self, tokens: u64) -> OwnedSemaphorePermit {
        // The semaphore is never closed.
        let permit = loop {
            if let Ok(p) = std::sync::Arc::clone(&self.slots).acquire_owned().await {
                break p;
            }
        };
        loop {
            let wait = {
                let mut st = lock(&self.state);
                let now = Instant::now();
                let cooling = st.cool_until.filter(|&u| u > now).map(|u| u - now);
                let mut wait = cooling.unwrap_or(Duration::ZERO);
                if wait.is_zero() {
                    if let Some(b) = &mut st.requests {
                        b.refill(now);
                        wait = wait.max(b.wait_for(1.0));
                    }
                    if let Some(b) = &mut st.tokens {
                        b.refill(now);
                        wait = wait.max(b.wait_for(tokens as f64));
                    }
                }
                if wait.is_zero() {
                    if let Some(b) = &mut st.requests {
                        b.level -= 1.0;
                    }
                    if let Some(b) = &mut st.tokens {
                        b.level -= (tokens as f64).min(b.capacity);
                    }
                    return permit;
                }
                wait
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Corrects the token bucket once a call's real size is known.
    pub fn settle(&self, estimated: u64, actual: u64) {
        let mut st = lock(&self.state);
        if let Some(b) = &mut st.tokens {
            b.level -= actual as f64 - (estimated as f64).min(b.capacity);
        }
    }

    /// Holds back every call until `until` (the provider said to wait).
    pub fn cool_down(&self, until: Instant) {
        let mut st = lock(&self.state);
        st.cool_until = Some(st.cool_until.map_or(until, |u| u.max(until)));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::config::Provider;

    fn config(rpm: Option<u32>, tpm: Option<u64>) -> ModelConfig {
        ModelConfig {
            name: "default".into(),
            provider: Provider::Anthropic,
            model: "m".into(),
            base_url: "http://x".into(),
            api_key_env: None,
            max_tokens: 100,
            concurrency: 4,
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
            retries: 1,
            timeout: Duration::from_secs(5),
            price: None,
            prompt_cache: true,
            tool_choice: Default::default(),
            span: 0..0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn requests_per_minute_paces_calls_evenly() {
        let limiter = Limiter::new(&config(Some(1200), None));
        let start = Instant::now();
        for _ in 0..20 {
            drop(limiter.acquire(0).await);
        }
        // One second's worth goes at once...
        assert!(start.elapsed() < Duration::from_millis(10));
        // ...and then one every 50 ms.
        for _ in 0..40 {
            drop(limiter.acquire(0).await);
        }
        let t = start.elapsed();
        assert!(
            t >= Duration::from_millis(1990) && t < Duration::from_millis(2100),
            "{t:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cool_down_holds_every_caller_until_it_ends() {
        let limiter = Limiter::new(&config(None, None));
        let start = Instant::now();
        limiter.cool_down(start + Duration::from_secs(3));
        limiter.cool_down(start + Duration::from_secs(1));
        drop(limiter.acquire(0).await);
        assert!(start.elapsed() >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_bigger_than_estimated_delays_the_next() {
        let limiter = Limiter::new(&config(None, Some(6000)));
        let start = Instant::now();
        drop(limiter.acquire(100).await);
        // It really used 100 tokens more than the second's worth it had.
        limiter.settle(100, 200);
        drop(limiter.acquire(100).await);
        // 100 of debt and 100 for this call, at 100 per second.
        let t = start.elapsed();
        assert!(
            t >= Duration::from_millis(1990) && t < Duration::from_millis(2100),
            "{t:?}"
        );
    }
}
