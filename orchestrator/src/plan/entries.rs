//! How a sharded task's command is given its entries: the `{entries}`
//! placeholder, each entry one shell word (`plan::shards` splits a task,
//! `plan::shard_parts` writes the script of a shard that holds parts).

/// The placeholder a sharded task's command gets its entries in.
pub const ENTRIES: &str = "entries";

/// `entries` as one shell word each, space-separated: what `{entries}`
/// becomes in a shard's command.
pub fn quoted(entries: &[String]) -> String {
    entries
        .iter()
        .map(|e| {
            let plain = !e.is_empty()
                && e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:@,".contains(&b));
            match plain {
                true => e.clone(),
                false => format!("'{}'", e.replace('\'', r"'\''")),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
