//! The run-wide verify's settings (`[swarm] verify`, `verify_every`,
//! `verify_timeout`, `verify_retries`, `verify_concurrency`), checked: part of step 2 of [`super::expand::plan`].

// As in expand.rs: a PlanError is built once per mistake, on the way out.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use super::error::{PlanError, PlanErrorKind, Source};
use super::schema::{SwarmSection, VerifyEvery};

/// How long one run of the run-wide verify may take unless the plan says.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The run-wide verify: a command that must pass on the integration
/// branch after merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunVerify {
    /// Run with `sh -c` in a read-only checkout of an integration commit.
    pub command: String,
    pub every: VerifyEvery,
    pub timeout: Duration,
    /// Runs again a failing run this many times before the failure
    /// counts.
    pub retries: u32,
    /// Runs at most this many at once (a search's probes).
    pub concurrency: u32,
}

/// How many times a failing run-wide verify is run again unless the plan
/// says: once, so that one flake never counts.
pub const DEFAULT_VERIFY_RETRIES: u32 = 1;

/// More retries than this are a mistake: a verify that fails eleven times
/// in a row on one tree is failing.
const MAX_VERIFY_RETRIES: u32 = 10;

/// More verifies at once than this are a mistake: each has a checkout and
/// build caches of its own.
const MAX_VERIFY_CONCURRENCY: u32 = 16;

/// `[swarm] verify` and its settings, or `None` without one; problems
/// are added to `errors`.
pub(super) fn check(
    source: &Source,
    swarm: &SwarmSection,
    errors: &mut Vec<PlanError>,
) -> Option<RunVerify> {
    let timeout = match &swarm.verify_timeout {
        None => DEFAULT_VERIFY_TIMEOUT,
        Some(t) => match humantime::parse_duration(t.get_ref()) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                errors.push(
                    source
                        .error(
                            PlanErrorKind::BadValue,
                            format!("invalid verify_timeout `{}`", t.get_ref()),
                            Some(t.span()),
                            "not a duration",
                        )
                        .with_help("write durations like \"90s\", \"20m\" or \"1h 30m\""),
                );
                DEFAULT_VERIFY_TIMEOUT
            }
        },
    };
    let retries = match &swarm.verify_retries {
        None => DEFAULT_VERIFY_RETRIES,
        Some(r) if *r.get_ref() <= MAX_VERIFY_RETRIES => *r.get_ref(),
        Some(r) => {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("verify_retries = {} is too many", r.get_ref()),
                        Some(r.span()),
                        "more than 10",
                    )
                    .with_help("a verify that fails this often on one tree is failing: give 0 to 10 (default 1), and fix what makes it flaky"),
            );
            DEFAULT_VERIFY_RETRIES
        }
    };
    let concurrency = match &swarm.verify_concurrency {
        None => 1,
        Some(c) if (1..=MAX_VERIFY_CONCURRENCY).contains(c.get_ref()) => *c.get_ref(),
        Some(c) => {
            errors.push(
                source
                    .error(
                        PlanErrorKind::BadValue,
                        format!("verify_concurrency = {} is out of range", c.get_ref()),
                        Some(c.span()),
                        "not 1 to 16",
                    )
                    .with_help("give how many verifies may run at once while it searches, 1 to 16 (each has a checkout and build caches of its own)"),
            );
            1
        }
    };
    let Some(command) = &swarm.verify else {
        // Settings of a verify that does not exist are a mistake the user
        // would not notice: nothing would ever be checked.
        let orphan = [
            (
                "verify_every",
                swarm.verify_every.as_ref().map(|v| v.span()),
            ),
            (
                "verify_timeout",
                swarm.verify_timeout.as_ref().map(|v| v.span()),
            ),
            (
                "verify_retries",
                swarm.verify_retries.as_ref().map(|v| v.span()),
            ),
            (
                "verify_concurrency",
                swarm.verify_concurrency.as_ref().map(|v| v.span()),
            ),
        ];
        for (key, span) in orphan {
            if let Some(span) = span {
                errors.push(
                    source
                        .error(
                            PlanErrorKind::BadValue,
                            format!("`{key}` is set but `[swarm] verify` is not"),
                            Some(span),
                            "has no effect",
                        )
                        .with_help("set `verify` in [swarm] to the command that must pass on the integration branch, e.g. verify = \"cargo test --offline\""),
                );
            }
        }
        return None;
    };
    if command.get_ref().trim().is_empty() {
        errors.push(
            source
                .error(
                    PlanErrorKind::BadValue,
                    "the run-wide `verify` is empty",
                    Some(command.span()),
                    "no command",
                )
                .with_help(
                    "give the command that must pass on the integration branch, or remove the key",
                ),
        );
        return None;
    }
    Some(RunVerify {
        command: command.get_ref().clone(),
        every: swarm
            .verify_every
            .as_ref()
            .map(|v| *v.get_ref())
            .unwrap_or_default(),
        timeout,
        retries,
        concurrency,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::super::{PlanErrorKind, parse};
    use super::*;

    fn plan(swarm: &str) -> String {
        format!("[swarm]\n{swarm}\n\n[[task]]\nid = \"a\"\nrun = \"true\"\n")
    }

    fn error(swarm: &str) -> (String, super::super::PlanError) {
        let text = plan(swarm);
        match parse(Path::new("plans/v.toml"), text.clone()) {
            Ok(_) => panic!("accepted: {swarm}"),
            Err(e) => (text, *e),
        }
    }

    /// The text an error's span covers.
    fn at(text: &str, e: &super::super::PlanError) -> String {
        let span = e.span.unwrap_or_else(|| panic!("no span: {e:?}"));
        text[span.offset()..span.offset() + span.len()].to_string()
    }

    #[test]
    fn the_run_wide_verify_defaults_to_the_end_and_thirty_minutes() {
        let parsed = |swarm: &str| {
            parse(Path::new("plans/v.toml"), plan(swarm))
                .unwrap_or_else(|e| panic!("{e:?}"))
                .verify
        };
        assert_eq!(parsed(""), None);
        assert_eq!(
            parsed("verify = \"cargo test --offline\""),
            Some(RunVerify {
                command: "cargo test --offline".into(),
                every: VerifyEvery::End,
                timeout: DEFAULT_VERIFY_TIMEOUT,
                retries: DEFAULT_VERIFY_RETRIES,
                concurrency: 1,
            })
        );
        let v = parsed("verify = \"t\"\nverify_retries = 0");
        assert_eq!(v.map(|v| v.retries), Some(0));
        let v =
            parsed("verify = \"make check\"\nverify_every = \"merge\"\nverify_timeout = \"5m\"");
        assert_eq!(v.as_ref().map(|v| v.every), Some(VerifyEvery::Merge));
        assert_eq!(v.map(|v| v.timeout), Some(Duration::from_secs(300)));
    }

    #[test]
    fn bad_run_verify_settings_are_errors_at_their_line() {
        let (text, e) = error("verify = \"t\"\nverify_every = \"merges\"");
        assert_eq!(e.kind, PlanErrorKind::BadValue, "{e:?}");
        assert_eq!(at(&text, &e), "\"merges\"");
        assert_eq!(e.help.as_deref(), Some("did you mean `merge`?"), "{e:?}");

        let (text, e) = error("verify = \"t\"\nverify_timeout = \"soon\"");
        assert!(e.message.contains("invalid verify_timeout `soon`"), "{e:?}");
        assert_eq!(at(&text, &e), "\"soon\"");

        let (text, e) = error("verify = \"t\"\nverify_concurrency = 0");
        assert!(e.message.contains("out of range"), "{e:?}");
        assert_eq!(at(&text, &e), "0");

        let (text, e) = error("verify = \"t\"\nverify_retries = 11");
        assert!(
            e.message.contains("verify_retries = 11 is too many"),
            "{e:?}"
        );
        assert_eq!(at(&text, &e), "11");

        let (text, e) = error("verify_every = \"merge\"");
        assert!(
            e.message
                .contains("`verify_every` is set but `[swarm] verify` is not"),
            "{e:?}"
        );
        assert_eq!(at(&text, &e), "\"merge\"");

        let (_, e) = error("verify = \"  \"");
        assert!(
            e.message.contains("the run-wide `verify` is empty"),
            "{e:?}"
        );
    }
}
