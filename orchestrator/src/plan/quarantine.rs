//! `[[quarantine]]`: tests known to be flaky or broken that run and are
//! reported but do not fail their task, each with an owner, a reason and a
//! date by which someone looks at it again (`review_by`). Past that date
//! the entry no longer holds: the test gates again and the summary says
//! which entries expired, so a quarantine cannot be forgotten.
//!
//! It loosens a gate, so only the person running swarm may write it
//! (`origin::rules`: an untrusted plan may not hold the table at all).
//! Applying it to a task's tests is `crate::test_attempts`'s.

use toml::Spanned;

use super::error::{PlanError, PlanErrorKind, Source};

/// One `[[quarantine]]` table as written.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuarantineFields {
    /// The test, as swarm names it in the summary's `failed:` lines
    /// (`classname::name`: `tests.test_net::test_fetch`); a trailing `*`
    /// takes every test whose name starts so (`tests.test_net::test_fetch[*`
    /// for each parameter of one test).
    #[schemars(with = "String")]
    pub test: Spanned<String>,
    /// Only in the tasks whose id matches this glob (default: every task).
    #[schemars(with = "Option<String>")]
    pub task: Option<Spanned<String>>,
    /// Who looks at it (a person or a team).
    #[schemars(with = "String")]
    pub owner: Spanned<String>,
    /// Why it is quarantined: an issue's link, or a few words.
    #[schemars(with = "String")]
    pub reason: Spanned<String>,
    /// The day (`2027-01-31`) after which the test gates again.
    #[schemars(with = "String")]
    pub review_by: Spanned<toml::value::Datetime>,
}

/// A checked `[[quarantine]]` entry.
#[derive(Debug, Clone)]
pub struct Quarantine {
    /// The test's name, without a trailing `*`.
    pub test: String,
    /// Whether `test` is a prefix (it was written with a trailing `*`).
    pub prefix: bool,
    /// The tasks it holds in (`None`: all).
    pub task: Option<globset::GlobMatcher>,
    pub owner: String,
    pub reason: String,
    /// `review_by` as (year, month, day).
    pub review_by: (u16, u8, u8),
}

impl Quarantine {
    /// Whether it holds test `name` (`classname::name`) of task `task`.
    pub fn holds(&self, task: &str, name: &str) -> bool {
        let test = match self.prefix {
            true => name.starts_with(&self.test),
            false => name == self.test,
        };
        test && self.task.as_ref().is_none_or(|g| g.is_match(task))
    }

    /// Whether `today` (year, month, day) is past its `review_by`.
    pub fn expired(&self, today: (u16, u8, u8)) -> bool {
        today > self.review_by
    }

    /// The entry as the summary and the JUnit report say it.
    pub fn note(&self) -> String {
        let (y, m, d) = self.review_by;
        format!(
            "quarantined until {y:04}-{m:02}-{d:02} (owner {}: {})",
            self.owner, self.reason
        )
    }
}

/// The plan's `[[quarantine]]` entries, checked; a bad one adds an error.
pub(super) fn check(
    source: &Source,
    written: &[Spanned<QuarantineFields>],
    errors: &mut Vec<PlanError>,
) -> Vec<Quarantine> {
    let mut out = Vec::with_capacity(written.len());
    for entry in written {
        let fields = entry.get_ref();
        let mut bad = |message: String, at: std::ops::Range<usize>, label: &str, help: &str| {
            errors.push(
                source
                    .error(PlanErrorKind::BadValue, message, Some(at), label)
                    .with_help(help.to_string()),
            );
        };
        let written_test = fields.test.get_ref().trim();
        let (test, prefix) = match written_test.strip_suffix('*') {
            Some(stem) => (stem.to_string(), true),
            None => (written_test.to_string(), false),
        };
        if test.is_empty() {
            bad(
                "a `[[quarantine]]` entry names no test".into(),
                fields.test.span(),
                "no test",
                "name the test as the summary's `failed:` line does: `tests.test_net::test_fetch`",
            );
            continue;
        }
        for (value, key) in [(&fields.owner, "owner"), (&fields.reason, "reason")] {
            if value.get_ref().trim().is_empty() {
                bad(
                    format!("`[[quarantine]]` entry for `{written_test}` has an empty `{key}`"),
                    value.span(),
                    "empty",
                    "a quarantine says who looks at the test again and why it is there",
                );
            }
        }
        let date = fields.review_by.get_ref();
        let review_by = match (date.date, date.time) {
            (Some(d), None) => (d.year, d.month, d.day),
            _ => {
                bad(
                    format!(
                        "`review_by` of the `[[quarantine]]` entry for `{written_test}` is not a day"
                    ),
                    fields.review_by.span(),
                    "not a day",
                    "write a day without quotes: `review_by = 2027-01-31`",
                );
                continue;
            }
        };
        let task = match &fields.task {
            None => None,
            Some(glob) => match globset::Glob::new(glob.get_ref()) {
                Ok(g) => Some(g.compile_matcher()),
                Err(e) => {
                    bad(
                        format!(
                            "`task` of the `[[quarantine]]` entry for `{written_test}` is not a glob: {e}"
                        ),
                        glob.span(),
                        "not a glob",
                        "a task id or a glob of ids: `pytest-*`",
                    );
                    continue;
                }
            },
        };
        out.push(Quarantine {
            test,
            prefix,
            task,
            owner: fields.owner.get_ref().trim().to_string(),
            reason: fields.reason.get_ref().trim().to_string(),
            review_by,
        });
    }
    out
}
