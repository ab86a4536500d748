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
