//! What model calls cost: a table of list prices for well-known models, so
//! that USD budgets and reports work without configuration. A plan's
//! `price = { input, output }` overrides it (and is required for a USD
//! budget on a model the table does not know, such as a local one).

use crate::gateway::config::Price;

/// List prices in USD per million tokens (input, output), by model-name
/// prefix; the longest matching prefix wins, so dated names such as
/// `claude-sonnet-4-5-20250929` find their family.
const TABLE: &[(&str, f64, f64)] = &[
    ("claude-opus-4-5", 5.0, 25.0),
    ("claude-opus-4", 15.0, 75.0),
    ("claude-sonnet-4", 3.0, 15.0),
    ("claude-3-7-sonnet", 3.0, 15.0),
    ("claude-3-5-sonnet", 3.0, 15.0),
    ("claude-haiku-4-5", 1.0, 5.0),
    ("claude-3-5-haiku", 0.8, 4.0),
    ("gpt-5-nano", 0.05, 0.4),
    ("gpt-5-mini", 0.25, 2.0),
    ("gpt-5", 1.25, 10.0),
    ("gpt-4.1-nano", 0.1, 0.4),
    ("gpt-4.1-mini", 0.4, 1.6),
    ("gpt-4.1", 2.0, 8.0),
    ("gpt-4o-mini", 0.15, 0.6),
    ("gpt-4o", 2.5, 10.0),
    ("o4-mini", 1.1, 4.4),
    ("o3", 2.0, 8.0),
];

/// The list price of `model`, if the table knows it.
pub fn lookup(model: &str) -> Option<Price> {
    // OpenRouter and similar prefix the vendor: `anthropic/claude-...`.
    let bare = model.rsplit('/').next().unwrap_or(model);
    TABLE
        .iter()
        .filter(|(prefix, _, _)| bare.starts_with(prefix))
        .max_by_key(|(prefix, _, _)| prefix.len())
        .map(|&(_, input, output)| Price { input, output })
}

/// The cost in USD of `input` and `output` tokens at `price`.
pub fn cost(price: Option<Price>, input: u64, output: u64) -> f64 {
    price.map_or(0.0, |p| {
        (input as f64 * p.input + output as f64 * p.output) / 1_000_000.0
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
        let p = Some(Price {
            input: 3.0,
            output: 15.0,
        });
        assert!((cost(p, 1_000_000, 100_000) - 4.5).abs() < 1e-9);
        assert_eq!(cost(None, 5, 5), 0.0);
    }
}
