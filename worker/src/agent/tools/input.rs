//! Reading a tool call's input object, with errors that tell the model
//! which field was wrong and what was expected, so it can retry.

use serde_json::{Map, Value};

/// The input object of one call.
pub(crate) struct Input<'a> {
    fields: Option<&'a Map<String, Value>>,
}

impl<'a> Input<'a> {
    pub(crate) fn new(value: &'a Value) -> Result<Input<'a>, String> {
        match value {
            Value::Object(fields) => Ok(Input {
                fields: Some(fields),
            }),
            // Some providers send `null` for a call without arguments.
            Value::Null => Ok(Input { fields: None }),
            other => Err(format!(
                "the input must be a JSON object, got {}",
                kind(other)
            )),
        }
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.fields
            .and_then(|fields| fields.get(field))
            .filter(|value| !value.is_null())
    }

    pub(crate) fn string(&self, field: &str) -> Result<&'a str, String> {
        self.opt_string(field)?
            .ok_or_else(|| format!("missing field `{field}` (a string)"))
    }

    pub(crate) fn opt_string(&self, field: &str) -> Result<Option<&'a str>, String> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong(field, "a string", other)),
        }
    }

    pub(crate) fn opt_bool(&self, field: &str) -> Result<Option<bool>, String> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong(field, "a boolean", other)),
        }
    }

    /// A non-negative whole number; `10.0` counts, as some models send it.
    pub(crate) fn opt_count(&self, field: &str) -> Result<Option<u64>, String> {
        let expected = "a non-negative integer";
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                if let Some(n) = n.as_u64() {
                    return Ok(Some(n));
                }
                match n.as_f64() {
                    Some(f) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => {
                        Ok(Some(f as u64))
                    }
                    _ => Err(format!("field `{field}` must be {expected}, got {n}")),
                }
            }
            Some(other) => Err(wrong(field, expected, other)),
        }
    }

    /// A positive number of seconds.
    pub(crate) fn opt_seconds(&self, field: &str) -> Result<Option<f64>, String> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(f) if f > 0.0 && f.is_finite() => Ok(Some(f)),
                _ => Err(format!(
                    "field `{field}` must be a positive number of seconds, got {n}"
                )),
            },
            Some(other) => Err(wrong(field, "a positive number of seconds", other)),
        }
    }
}

fn wrong(field: &str, expected: &str, got: &Value) -> String {
    format!("field `{field}` must be {expected}, got {}", kind(got))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_read_and_checked() {
        let value = json!({"path": "a", "n": 3, "f": 4.0, "b": true, "bad": -1, "nul": null});
        let input = Input::new(&value).unwrap();
        assert_eq!(input.string("path").unwrap(), "a");
        assert_eq!(input.opt_count("n").unwrap(), Some(3));
        assert_eq!(input.opt_count("f").unwrap(), Some(4));
        assert_eq!(input.opt_bool("b").unwrap(), Some(true));
        assert_eq!(input.opt_string("nul").unwrap(), None);
        assert_eq!(
            input.string("missing").unwrap_err(),
            "missing field `missing` (a string)"
        );
        assert_eq!(
            input.string("n").unwrap_err(),
            "field `n` must be a string, got a number"
        );
        assert!(input.opt_count("bad").unwrap_err().contains("non-negative"));
        assert!(input.opt_seconds("bad").unwrap_err().contains("positive"));
        assert_eq!(input.opt_seconds("f").unwrap(), Some(4.0));
    }

    #[test]
    fn non_objects_are_refused() {
        assert!(Input::new(&json!([1])).is_err());
        let null = Value::Null;
        let input = Input::new(&null).unwrap();
        assert!(input.string("path").is_err());
    }
}
