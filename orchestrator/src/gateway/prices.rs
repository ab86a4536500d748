//! What model calls cost: a table of list prices for well-known models, so
//! that USD budgets and reports work without configuration. A plan's
//! `price = { input, output }` overrides it (and is required for a USD
//! budget on a model the table does not know, such as a local one).
//! Tokens read from or written to the provider's prompt cache have their
//! own prices.

use swarm_protocol::agent::Usage;

use crate::gateway::config::{Price, Provider};

/// List prices in USD per million tokens (input, output, and for OpenAI
/// models cached input), by model-name prefix; the longest matching prefix
/// wins, so dated names such as `claude-sonnet-4-5-20250929` find their
/// family. Anthropic's cache prices are the same share of input for every
/// model ([`for_provider`]).
const TABLE: &[(&str, f64, f64, Option<f64>)] = &[
    ("claude-opus-4-5", 5.0, 25.0, None),
    ("claude-opus-4", 15.0, 75.0, None),
    ("claude-sonnet-4", 3.0, 15.0, None),
    ("claude-3-7-sonnet", 3.0, 15.0, None),
    ("claude-3-5-sonnet", 3.0, 15.0, None),
    ("claude-haiku-4-5", 1.0, 5.0, None),
    ("claude-3-5-haiku", 0.8, 4.0, None),
    ("gpt-5-nano", 0.05, 0.4, Some(0.005)),
    ("gpt-5-mini", 0.25, 2.0, Some(0.025)),
    ("gpt-5", 1.25, 10.0, Some(0.125)),
    ("gpt-4.1-nano", 0.1, 0.4, Some(0.025)),
    ("gpt-4.1-mini", 0.4, 1.6, Some(0.1)),
    ("gpt-4.1", 2.0, 8.0, Some(0.5)),
    ("gpt-4o-mini", 0.15, 0.6, Some(0.075)),
    ("gpt-4o", 2.5, 10.0, Some(1.25)),
    ("o4-mini", 1.1, 4.4, Some(0.275)),
    ("o3", 2.0, 8.0, Some(0.5)),
];

/// The list price of `model`, if the table knows it.
pub fn lookup(model: &str) -> Option<Price> {
    // OpenRouter and similar prefix the vendor: `anthropic/claude-...`.
    let bare = model.rsplit('/').next().unwrap_or(model);
    TABLE
        .iter()
        .filter(|(prefix, ..)| bare.starts_with(prefix))
        .max_by_key(|(prefix, ..)| prefix.len())
        .map(|&(_, input, output, cache_read)| Price {
            cache_read,
            ..Price::new(input, output)
        })
}

/// `price` with its cache prices filled in as `provider` bills them when
/// the plan or the table gave none: Anthropic reads at a tenth of the
/// input price and writes at 1.25 times it; other providers' reads are
/// counted at the input price (never less than they cost), writes too.
pub fn for_provider(price: Price, provider: Provider) -> Price {
    let (read, write) = match provider {
        Provider::Anthropic => (0.1, 1.25),
        Provider::Openai => (1.0, 1.0),
    };
    Price {
        cache_read: Some(price.cache_read.unwrap_or(price.input * read)),
        cache_write: Some(price.cache_write.unwrap_or(price.input * write)),
        ..price
    }
}

/// The cost in USD of a call's `usage` at `price`: its input read from
/// the cache, written to it and neither, each at its price.
pub fn cost_of(price: Option<Price>, usage: &Usage) -> f64 {
    price.map_or(0.0, |p| {
        let read = p.cache_read.unwrap_or(p.input);
        let write = p.cache_write.unwrap_or(p.input);
        (usage.uncached_input() as f64 * p.input
            + usage.cache_read_tokens as f64 * read
            + usage.cache_write_tokens as f64 * write
            + usage.output_tokens as f64 * p.output)
            / 1_000_000.0
    })
}

/// The most a call of `prompt` tokens and `output` tokens of answer can
/// cost at `price`: its prompt written to the cache, if that is dearer.
pub fn most(price: Option<Price>, prompt: u64, output: u64) -> f64 {
    price.map_or(0.0, |p| {
        let input = p.input.max(p.cache_write.unwrap_or(p.input));
        (prompt as f64 * input + output as f64 * p.output) / 1_000_000.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_prefix_wins() {
        assert_eq!(
            lookup("claude-sonnet-4-5-20250929").map(|p| p.input),
            Some(3.0)
        );
        assert_eq!(lookup("claude-opus-4-5").map(|p| p.output), Some(25.0));
        assert_eq!(lookup("claude-opus-4-1").map(|p| p.output), Some(75.0));
        assert_eq!(lookup("gpt-4o-mini").map(|p| p.input), Some(0.15));
        assert_eq!(lookup("openai/gpt-4.1").map(|p| p.input), Some(2.0));
        assert_eq!(lookup("llama3.1:8b"), None);
    }

    #[test]
    fn cost_is_per_million_tokens() {
        let p = Some(Price::new(3.0, 15.0));
        let usage = |input_tokens, output_tokens| Usage {
            input_tokens,
            output_tokens,
            ..Usage::default()
        };
        assert!((cost_of(p, &usage(1_000_000, 100_000)) - 4.5).abs() < 1e-9);
        assert_eq!(cost_of(None, &usage(5, 5)), 0.0);
    }

    #[test]
    fn cached_input_is_priced_as_the_provider_bills_it() {
        let sonnet = for_provider(lookup("claude-sonnet-4-5").unwrap(), Provider::Anthropic);
        assert_eq!(sonnet.cache_read, Some(0.30000000000000004));
        assert_eq!(sonnet.cache_write, Some(3.75));
        // 1M input of which 600k read and 200k written, 100k out.
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_read_tokens: 600_000,
            cache_write_tokens: 200_000,
        };
        let usd = cost_of(Some(sonnet), &usage);
        assert!((usd - (0.6 + 0.18 + 0.75 + 1.5)).abs() < 1e-9, "{usd}");
        let gpt = for_provider(lookup("gpt-4.1").unwrap(), Provider::Openai);
        assert_eq!(gpt.cache_read, Some(0.5));
        assert_eq!(gpt.cache_write, Some(2.0));
        // A local model with a price of its own: no discount assumed.
        let local = for_provider(Price::new(1.0, 2.0), Provider::Openai);
        assert_eq!(local.cache_read, Some(1.0));
        assert!(
            (most(Some(sonnet), 1000, 100) - (1000.0 * 3.75 + 100.0 * 15.0) / 1e6).abs() < 1e-12
        );
    }
}
