//! An agent task's `output_schema`: the JSON Schema its final answer must
//! match (Claude Code's `--json-schema`, Codex's `--output-schema`, swarm's
//! agent's `finish` tool, a command agent's last line). Checked with the
//! `jsonschema` crate; the errors say where the answer is wrong, in words
//! an agent can act on.

use serde_json::Value;

/// Most errors reported for one answer.
const MAX_ERRORS: usize = 10;

/// Whether `schema` is a JSON Schema that can check answers: the reason if
/// not.
pub fn compile(schema: &Value) -> Result<(), String> {
    if !schema.is_object() {
        return Err("a JSON Schema is an object (a table)".into());
    }
    jsonschema::validator_for(schema)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Checks `answer` against `schema`: every way it does not match (at most
/// ten), each as `at <JSON pointer>: <what is wrong>`.
pub fn check(schema: &Value, answer: &Value) -> Result<(), Vec<String>> {
    let validator = jsonschema::validator_for(schema).map_err(|e| vec![e.to_string()])?;
    let errors: Vec<String> = validator
        .iter_errors(answer)
        .take(MAX_ERRORS)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("at {}: {e}", if at.is_empty() { "/" } else { &at })
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The JSON value an agent answered with in `text`: the whole text, or
/// its last line that is JSON, or the JSON inside a ```json fence.
pub fn answer_in(text: &str) -> Option<Value> {
    let text = text.trim();
    if let Ok(v) = serde_json::from_str(text) {
        return Some(v);
    }
    if let Some(start) = text.find("```json") {
        let rest = &text[start + 7..];
        if let Some(end) = rest.find("```")
            && let Ok(v) = serde_json::from_str(rest[..end].trim())
        {
            return Some(v);
        }
    }
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v.is_object() || v.is_array())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_answer_is_checked_and_each_mistake_is_placed() {
        let schema = json!({"type": "object", "properties": {
            "verdict": {"enum": ["approve", "reject"]}, "score": {"type": "number"}},
            "required": ["verdict"]});
        assert!(compile(&schema).is_ok());
        assert!(check(&schema, &json!({"verdict": "approve"})).is_ok());
        let errors = check(&schema, &json!({"verdict": "maybe", "score": "high"})).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors.iter().any(|e| e.starts_with("at /verdict")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.starts_with("at /score")),
            "{errors:?}"
        );
        assert!(compile(&json!({"type": 3})).is_err());
        assert!(compile(&json!("object")).is_err());
    }

    #[test]
    fn an_answer_is_found_whole_fenced_or_on_its_last_line() {
        assert_eq!(answer_in(" {\"a\": 1} "), Some(json!({"a": 1})));
        assert_eq!(
            answer_in("Here:\n```json\n{\"a\": 2}\n```\nDone."),
            Some(json!({"a": 2}))
        );
        assert_eq!(answer_in("log line\n{\"a\": 3}\n"), Some(json!({"a": 3})));
        assert_eq!(answer_in("no json here\n42"), None);
    }
}

/// A `{deps.<id>.output[.<key>...]}` in a command: a dependency's answer,
/// or a part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Byte range of the whole `{...}` in the text.
    pub range: std::ops::Range<usize>,
    pub dep: String,
    /// Keys (or array indices) into the answer.
    pub path: Vec<String>,
}

/// Every `{deps.<id>.output...}` in `text`.
pub fn references(text: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("{deps.").map(|i| from + i) {
        let Some(close) = text[open..].find('}').map(|i| open + i) else {
            break;
        };
        from = open + 1;
        let inner = &text[open + 1..close];
        let mut parts = inner.split('.');
        let (Some("deps"), Some(dep), Some("output")) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path: Vec<String> = parts.map(str::to_string).collect();
        if dep.is_empty() || path.iter().any(String::is_empty) {
            continue;
        }
        found.push(Reference {
            range: open..close + 1,
            dep: dep.to_string(),
            path,
        });
        from = close + 1;
    }
    found
}

/// A command with its `{deps...}` filled in: the script, and the
/// variables (`SWARM_DEP_1`, ...) it now references, which the command's
/// environment must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filled {
    pub script: String,
    pub env: Vec<(String, String)>,
}

/// The variable the `n`th (from 1) `{deps...}` of a command is passed in.
pub fn dep_var(n: usize) -> String {
    format!("SWARM_DEP_{n}")
}

/// Each `{deps...}` of `script` that stands where no value can be put
/// safely (inside single quotes, backquotes, `$((...))`, `${...}`), with
/// where it stands.
pub fn unfillable(script: &str) -> Vec<(Reference, crate::shell_words::Context)> {
    let found = references(script);
    let offsets: Vec<usize> = found.iter().map(|r| r.range.start).collect();
    let contexts = crate::shell_words::contexts(script, &offsets);
    found
        .into_iter()
        .zip(contexts)
        .filter(|(_, c)| !c.fillable() && *c != crate::shell_words::Context::Comment)
        .collect()
}

/// `script` with each `{deps.<id>.output...}` replaced by a reference to a
/// variable holding that part of the dependency's answer in `answers` (by
/// id): a string as itself, anything else as JSON text. The answer is a
/// model's: passed in a variable, written where it stands so that it is
/// one word (`"${SWARM_DEP_1}"` outside quotes, `${SWARM_DEP_1}` inside
/// double quotes), the shell never reads it as syntax. One that stands
/// where that cannot be done (inside single quotes...), or an answer that
/// is not there or has no such part, is an error saying which; one in a
/// comment is left as it is.
pub fn fill(script: &str, answers: &serde_json::Map<String, Value>) -> Result<Filled, String> {
    use crate::shell_words::Context;
    let found = references(script);
    let offsets: Vec<usize> = found.iter().map(|r| r.range.start).collect();
    let contexts = crate::shell_words::contexts(script, &offsets);
    let mut out = String::with_capacity(script.len());
    let mut env = Vec::new();
    let mut at = 0;
    for (r, context) in found.into_iter().zip(contexts) {
        let written = &script[r.range.clone()];
        if context == Context::Comment {
            continue;
        }
        out.push_str(&script[at..r.range.start]);
        let answer = answers.get(&r.dep).ok_or_else(|| {
            format!("{written}: task `{}` gave no answer (it needs an output_schema, and to have finished)", r.dep)
        })?;
        let mut value = answer;
        for key in &r.path {
            value = match value {
                Value::Object(map) => map.get(key),
                Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            }
            .ok_or_else(|| format!("{written}: the answer of `{}` has no `{key}`", r.dep))?;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let var = dep_var(env.len() + 1);
        let expansion = context.expansion(&var).ok_or_else(|| {
            format!(
                "{written} stands {}, where no value can be put safely: take the quotes away (it is filled in as one word)",
                context.describe()
            )
        })?;
        out.push_str(&expansion);
        env.push((var, text));
        at = r.range.end;
    }
    out.push_str(&script[at..]);
    Ok(Filled { script: out, env })
}

#[cfg(test)]
mod fill_tests {
    use serde_json::json;

    use super::*;

    /// What `sh -c` prints for `script` with `env` set.
    fn run(filled: &Filled) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&filled.script)
            .env_clear()
            .envs(filled.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(out.status.success(), "{filled:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn a_dependency_s_answer_is_one_word_whatever_it_holds() {
        let answers = json!({"review": {"verdict": "it's fine; rm -rf / $(touch x) `id` *", "scores": [3, 4]}});
        let answers = answers.as_object().unwrap();
        let filled = fill(
            "printf '%s|' {deps.review.output.verdict} {deps.review.output.scores.1} {deps.review.output}",
            answers,
        )
        .unwrap();
        assert_eq!(
            filled.script,
            r#"printf '%s|' "${SWARM_DEP_1}" "${SWARM_DEP_2}" "${SWARM_DEP_3}""#
        );
        assert_eq!(
            run(&filled),
            r#"it's fine; rm -rf / $(touch x) `id` *|4|{"scores":[3,4],"verdict":"it's fine; rm -rf / $(touch x) `id` *"}|"#
        );
        assert!(
            fill("{deps.other.output}", answers)
                .unwrap_err()
                .contains("gave no answer")
        );
        assert!(
            fill("{deps.review.output.nope}", answers)
                .unwrap_err()
                .contains("has no `nope`")
        );
        assert_eq!(
            fill("{deps.x} {matrix}", answers).unwrap().script,
            "{deps.x} {matrix}"
        );
    }

    /// A plan author who put the placeholder inside double quotes: the
    /// answer `$(touch x)approve` stays text (it ran as a command when the
    /// fill added single quotes inside the author's double quotes).
    #[test]
    fn inside_double_quotes_the_answer_is_still_data() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("x");
        let answers =
            json!({"review": {"verdict": format!("$(touch {})approve", marker.display())}});
        let filled = fill(
            "echo \"verdict: {deps.review.output.verdict}\"",
            answers.as_object().unwrap(),
        )
        .unwrap();
        assert_eq!(filled.script, "echo \"verdict: ${SWARM_DEP_1}\"");
        let shown = run(&filled);
        assert!(shown.contains("approve"), "{shown}");
        assert!(!marker.exists(), "the answer ran as a command");
    }

    /// Inside single quotes no value can be put safely: refused, at run
    /// time and (see `plan`) when the plan is checked.
    #[test]
    fn inside_single_quotes_it_is_refused() {
        let answers = json!({"review": {"verdict": "'; touch x; '"}});
        let e = fill(
            "echo 'verdict: {deps.review.output.verdict}'",
            answers.as_object().unwrap(),
        )
        .unwrap_err();
        assert!(e.contains("inside single quotes"), "{e}");
        assert_eq!(
            unfillable(
                "echo '{deps.a.output}' \"{deps.b.output}\" `{deps.c.output}` # {deps.d.output}"
            )
            .iter()
            .map(|(r, _)| r.dep.as_str())
            .collect::<Vec<_>>(),
            ["a", "c"]
        );
    }
}
