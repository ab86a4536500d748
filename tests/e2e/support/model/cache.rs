//! The mock's prompt cache, as Anthropic's works: a request's
//! `cache_control` markers say where a prefix of its prompt (tools, then
//! system, then messages, block by block) may be cached. A prefix written
//! by an earlier request is read back when a marker of this one, or a
//! block boundary up to 20 blocks before a marker, ends the same prefix;
//! what lies between the read prefix and the last marker is written. A
//! prefix shorter than 1,024 tokens is never cached. Tokens are counted at
//! four bytes of the blocks' JSON, as the mock counts prompts.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::Value;

/// Tokens of a prompt prefix below which nothing is cached.
const MIN_CACHED: u64 = 1024;

/// How many block boundaries before a marker are looked at for a hit.
const LOOKBACK: usize = 20;

/// A prompt's input tokens as the provider bills them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    /// Neither read from the cache nor written to it.
    pub uncached: u64,
    pub read: u64,
    pub written: u64,
}

/// The prefixes cached so far, by hash.
#[derive(Debug, Default)]
pub struct PromptCache {
    prefixes: HashSet<u64>,
}

impl PromptCache {
    /// Bills the prompt of an Anthropic Messages `body`, and caches what
    /// its markers ask for.
    pub fn bill(&mut self, body: &Value) -> Split {
        let blocks = blocks(body);
        let (mut hash, mut tokens) = (DefaultHasher::new(), 0u64);
        let mut at: Vec<(u64, u64)> = Vec::with_capacity(blocks.len());
        for (text, _) in &blocks {
            text.hash(&mut hash);
            tokens += (text.len() as u64 / 4).max(1);
            at.push((hash.finish(), tokens));
        }
        let marks: Vec<usize> = blocks
            .iter()
            .enumerate()
            .filter_map(|(i, (_, marked))| marked.then_some(i))
            .collect();
        let mut read = 0;
        for &m in &marks {
            for j in (m.saturating_sub(LOOKBACK)..=m).rev() {
                let (h, t) = at[j];
                if t >= MIN_CACHED && self.prefixes.contains(&h) {
                    read = read.max(t);
                    break;
                }
            }
        }
        let mut written = 0;
        if let Some(&last) = marks.last() {
            let (_, t) = at[last];
            if t >= MIN_CACHED && t > read {
                written = t - read;
            }
        }
        for &m in &marks {
            if at[m].1 >= MIN_CACHED {
                self.prefixes.insert(at[m].0);
            }
        }
        Split {
            uncached: tokens - read - written,
            read,
            written,
        }
    }
}

/// The prompt's blocks in the order the cache sees them, each as its JSON
/// without the marker, and whether it carries one.
fn blocks(body: &Value) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut push = |block: &Value| {
        let marked = block.get("cache_control").is_some();
        let mut bare = block.clone();
        if let Some(o) = bare.as_object_mut() {
            o.remove("cache_control");
        }
        out.push((bare.to_string(), marked));
    };
    for tool in body["tools"].as_array().into_iter().flatten() {
        push(tool);
    }
    match &body["system"] {
        Value::Array(system) => system.iter().for_each(&mut push),
        Value::String(s) => push(&Value::String(s.clone())),
        _ => {}
    }
    for message in body["messages"].as_array().into_iter().flatten() {
        match &message["content"] {
            Value::Array(content) => content.iter().for_each(&mut push),
            other => push(other),
        }
    }
    out
}
