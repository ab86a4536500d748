//! Items of a vector found by their ids, without a copy of the ids: the
//! index holds positions, and asks the vector for the id at one when it
//! compares or rehashes.
//!
//! A run finds its tasks by id in two places, the task table and the fold
//! of its events. A `HashMap<String, usize>` in each copied every task id
//! and took 32 bytes a bucket: 1.5 MB for the two at 10,000 tasks, against
//! about 0.3 MB now.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

/// Positions in a vector of items with ids, by id. The vector is the
/// caller's: each method takes `id_of`, the id of the item at a position.
/// What holds it together is the caller's to keep: an item is in the
/// vector before its position is inserted, items are only ever added at
/// the end, and an item's id never changes (a position whose id changed
/// would be found under neither id).
#[derive(Debug, Default, Clone)]
pub(crate) struct IdIndex {
    table: HashTable<usize>,
    hasher: RandomState,
}

impl IdIndex {
    /// An empty index with room for `n` ids.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            table: HashTable::with_capacity(n),
            hasher: RandomState::new(),
        }
    }

    /// The index of the `len` items of a vector, in order (the first of a
    /// repeated id keeps it).
    pub fn of<'a>(len: usize, id_of: impl Fn(usize) -> &'a str) -> Self {
        let mut index = Self::with_capacity(len);
        for at in 0..len {
            index.insert(at, &id_of);
        }
        index
    }

    /// The position of the item `id`.
    pub fn get<'a>(&self, id: &str, id_of: impl Fn(usize) -> &'a str) -> Option<usize> {
        let hash = self.hasher.hash_one(id);
        self.table.find(hash, |&at| id_of(at) == id).copied()
    }

    /// Whether there is an item `id`.
    pub fn contains<'a>(&self, id: &str, id_of: impl Fn(usize) -> &'a str) -> bool {
        self.get(id, id_of).is_some()
    }

    /// Adds the item at `at`, unless one with its id is there already (the
    /// first keeps the id); whether it was added.
    pub fn insert<'a>(&mut self, at: usize, id_of: impl Fn(usize) -> &'a str) -> bool {
        let id = id_of(at);
        let hash = self.hasher.hash_one(id);
        if self.table.find(hash, |&other| id_of(other) == id).is_some() {
            return false;
        }
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, at, |&other| hasher.hash_one(id_of(other)));
        true
    }

    /// How many ids it holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::IdIndex;

    #[test]
    fn finds_each_id_through_growth_and_keeps_the_first_of_a_repeated_one() {
        let ids: Vec<String> = (0..1000)
            .map(|i| format!("t-{i}"))
            .chain(["t-7".to_string()])
            .collect();
        let id_of = |i: usize| ids[i].as_str();
        let mut index = IdIndex::default();
        for at in 0..ids.len() {
            index.insert(at, id_of);
        }
        assert_eq!(index.len(), 1000);
        for (at, id) in ids.iter().enumerate().take(1000) {
            assert_eq!(index.get(id, id_of), Some(at));
        }
        assert_eq!(index.get("t-7", id_of), Some(7));
        assert!(!index.contains("t-1000", id_of));
        assert!(!index.contains("t", id_of));
    }
}
