//! The planner model's answer: one JSON object describing the split (or
//! why there is none), read out of the model's text. Everything wrong with
//! it is said in words the model can act on, since the words go back to it.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

/// The whole answer.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// False when one task is best (the goal is small or cannot be split
    /// without the parts conflicting): then `tasks` holds that one task.
    pub split: bool,
    /// Why this split, or why none.
    #[schemars(length(max = 400))]
    pub reason: String,
    /// The repository's test command, run after every task (`[defaults]
    /// verify`), if there is an obvious one.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub verify: Option<String>,
    #[schemars(length(min = 1, max = 50))]
    pub tasks: Vec<Unit>,
}

/// One unit of work.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    #[schemars(length(min = 1, max = 40))]
    pub id: String,
    /// One line: why this task exists.
    #[schemars(length(max = 200))]
    pub why: String,
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub deps: Vec<String>,
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub paths: Vec<String>,
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub creates: Vec<String>,
    /// Instructions for a coding agent.
    #[serde(default)]
    #[schemars(length(max = 2000))]
    pub prompt: Option<String>,
    /// A shell command, for work that needs no judgement.
    #[serde(default)]
    #[schemars(length(max = 500))]
    pub run: Option<String>,
    /// This task's own check, beyond the run-wide one.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub verify: Option<String>,
    /// It only reads (reviews, reports): nothing of it is merged.
    #[serde(default)]
    pub readonly: bool,
    #[serde(default)]
    pub allow_overlap: bool,
}

/// The shape the planner asks the model's answer to have: [`Answer`]'s
/// JSON schema, so that a model that can be held to one (every provider
/// offers a way; llama.cpp's server makes it a grammar) answers in shape.
///
/// The schema says what of a plan's rules a shape can say, so that a model
/// held to it cannot break them:
/// - strings and lists are bounded (`maxLength`, `maxItems`; `tasks` by
///   `max_tasks`): a grammar that allows any length lets a small model run
///   a string to the token limit, and its answer is cut;
/// - ids and `deps` entries are in the id alphabet, and a task has fewer
///   `deps` than the plan may have tasks;
/// - a task has exactly one of `prompt` and `run`;
/// - `paths` entries are paths of the base, when `base_paths` lists them
///   (a short list; see [`MAX_LISTED_PATHS`]): a path that does not exist
///   yet goes in `creates`, as the prompt says.
///
/// What a shape cannot say (a dependency naming a task of this plan, two
/// unordered tasks writing one path) is left to the checks and the repair
/// rounds.
pub fn format(max_tasks: usize, base_paths: Option<&[String]>) -> crate::gateway::AnswerFormat {
    let schema = schemars::schema_for!(Answer);
    let mut schema = serde_json::to_value(&schema).unwrap_or_default();
    if let Some(tasks) = schema.pointer_mut("/properties/tasks") {
        tasks["maxItems"] = json!(max_tasks.max(1));
    }
    if let Some(unit) = schema.pointer_mut("/$defs/Unit") {
        shape_unit(unit, max_tasks, base_paths);
    }
    crate::gateway::AnswerFormat {
        name: "plan".into(),
        schema,
    }
}

/// The shape of a repair round's answer: [`format`], with the tasks held
/// to the ids the last answer gave (`last_ids`, each made an id and told
/// apart from the others, at most `max_tasks`), in that order, each
/// depending only on the others. A small model asked to fix its plan
/// otherwise renames tasks, repeats them and names deps that are not
/// there; held to its own ids it can only fix the rest. It may drop tasks
/// from the end (llama.cpp holds a `prefixItems` answer to all of them),
/// never add others: with `items` beside `prefixItems` for new tasks,
/// llama.cpp's grammar takes `items` alone and holds nothing.
pub fn repair_format(
    max_tasks: usize,
    base_paths: Option<&[String]>,
    last_ids: &[String],
) -> crate::gateway::AnswerFormat {
    let mut format = format(max_tasks, base_paths);
    let ids = pinned_ids(last_ids, max_tasks.max(1));
    let Some(unit) = format.schema.pointer("/$defs/Unit").cloned() else {
        return format;
    };
    let items: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| {
            let others: Vec<&String> = ids.iter().filter(|o| *o != id).collect();
            let mut task = unit.clone();
            if let Some(shapes) = task.get_mut("anyOf").and_then(|a| a.as_array_mut()) {
                for shape in shapes {
                    shape["properties"]["id"] = json!({"const": id});
                    shape["properties"]["deps"] = if others.is_empty() {
                        json!({"type": "array", "maxItems": 0})
                    } else {
                        json!({"type": "array", "items": {"enum": others}, "maxItems": others.len()})
                    };
                }
            }
            task
        })
        .collect();
    if let Some(tasks) = format.schema.pointer_mut("/properties/tasks") {
        *tasks = json!({
            "type": "array",
            "prefixItems": items,
            "minItems": 1,
            "maxItems": ids.len(),
        });
    }
    format
}

/// The ids of the last answer's tasks (`ids`, as it gave them), made ids
/// as a matrix value is ([`crate::plan::matrix::slug`], at most 36
/// characters) and told apart (`-2`, `-3`, ... on a repeat), at most `max`
/// of them (and at most 50, as many as an answer may have: a suffix stays
/// within 4 characters, an id within 40).
fn pinned_ids(ids: &[String], max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids.iter().take(max.min(50)) {
        let mut made: String = crate::plan::matrix::slug(id).chars().take(36).collect();
        if made.is_empty() {
            made = "task".into();
        }
        let mut candidate = made.clone();
        let mut n = 1;
        while out.contains(&candidate) {
            n += 1;
            candidate = format!("{made}-{n}");
        }
        out.push(candidate);
    }
    out
}

/// The ids of the tasks of the answer in `text`, if it holds a JSON object
/// with a `tasks` list, whatever else is wrong with it.
pub fn task_ids(text: &str) -> Option<Vec<String>> {
    let json = extract(text)?;
    let mut reader = serde_json::Deserializer::from_str(json);
    let value = serde_json::Value::deserialize(&mut reader).ok()?;
    let tasks = value.get("tasks")?.as_array()?;
    Some(
        tasks
            .iter()
            .filter_map(|t| t.get("id")?.as_str().map(str::to_string))
            .collect(),
    )
}

/// At most this many paths of the base are listed in the schema (files
/// and directories); a larger tree leaves `paths` free text.
pub const MAX_LISTED_PATHS: usize = 256;

/// The pattern of a task id ([`crate::ids::is_valid_task_id`], shorter).
const ID_PATTERN: &str = "^[a-z0-9_-]{1,40}$";

/// [`Unit`]'s schema held to the rules a shape can say (see [`format`]).
fn shape_unit(unit: &mut serde_json::Value, max_tasks: usize, base_paths: Option<&[String]>) {
    let id = json!({"type": "string", "pattern": ID_PATTERN, "minLength": 1, "maxLength": 40});
    let Some(props) = unit.get_mut("properties") else {
        return;
    };
    props["id"] = id.clone();
    props["deps"]["items"] = id;
    props["deps"]["maxItems"] = json!(max_tasks.saturating_sub(1).min(20));
    if let Some(paths) = base_paths.filter(|p| !p.is_empty()) {
        props["paths"]["items"] = json!({"type": "string", "enum": paths});
    }
    // One of `prompt` and `run`: two shapes of a task, each with its own
    // key required and the other's absent.
    let mut agent = unit.clone();
    let mut command = unit.clone();
    for (shape, keep, drop, max) in [
        (&mut agent, "prompt", "run", 2000),
        (&mut command, "run", "prompt", 500),
    ] {
        if let Some(props) = shape.get_mut("properties").and_then(|p| p.as_object_mut()) {
            props.remove(drop);
            props.insert(
                keep.into(),
                json!({"type": "string", "minLength": 1, "maxLength": max}),
            );
        }
        if let Some(required) = shape.get_mut("required").and_then(|r| r.as_array_mut()) {
            required.push(json!(keep));
        }
        if let Some(shape) = shape.as_object_mut() {
            shape.remove("description");
        }
    }
    let description = unit.get("description").cloned();
    *unit = json!({"anyOf": [agent, command]});
    if let Some(description) = description {
        unit["description"] = description;
    }
}

/// Reads the answer out of the model's `text`: the JSON object in a
/// ```json fence, or else from the first `{` to the last `}`.
pub fn parse(text: &str) -> Result<Answer, String> {
    let json = extract(text).ok_or_else(|| {
        "the answer holds no JSON object; answer with one JSON object in a ```json fence, as described".to_string()
    })?;
    // One value is read and what follows it (the fence, prose) ignored, so
    // a fence or brace inside a string of the plan cannot cut it short.
    let mut reader = serde_json::Deserializer::from_str(json);
    let answer = Answer::deserialize(&mut reader).map_err(|e| {
        if e.is_eof() {
            format!("the JSON object ends early ({e}): the answer was cut off or is unbalanced; answer again, shorter if needed")
        } else {
            format!("the JSON object is invalid at line {}, column {}: {e}", e.line(), e.column())
        }
    })?;
    if answer.tasks.is_empty() {
        return Err(
            "`tasks` is empty: give at least one task (with `split: false` for a single one)"
                .into(),
        );
    }
    if !answer.split && answer.tasks.len() > 1 {
        return Err(format!(
            "`split` is false but there are {} tasks: with `split: false` give exactly one task",
            answer.tasks.len()
        ));
    }
    let mut problems = Vec::new();
    for unit in &answer.tasks {
        match (&unit.prompt, &unit.run) {
            (Some(_), Some(_)) => problems.push(format!(
                "task `{}` has both `prompt` and `run`: give one (`prompt` for an agent, `run` for a shell command)",
                unit.id
            )),
            (None, None) => problems.push(format!(
                "task `{}` has neither `prompt` nor `run`: give one",
                unit.id
            )),
            _ => {}
        }
        if unit.why.trim().is_empty() {
            problems.push(format!(
                "task `{}` has an empty `why`: say in one line why it exists",
                unit.id
            ));
        }
    }
    if problems.is_empty() {
        Ok(answer)
    } else {
        Err(problems.join("\n"))
    }
}

/// Where the JSON object starts: at the first `{` after a ```json fence,
/// or else the first `{` of the answer.
fn extract(text: &str) -> Option<&str> {
    let after_fence = text.find("```json").map_or(0, |at| at + "```json".len());
    let start = after_fence + text[after_fence..].find('{')?;
    Some(&text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"split": false, "reason": "small", "tasks": [{"id": "a", "why": "all of it", "prompt": "do it"}]}"#;

    #[test]
    fn reads_fenced_or_bare_json() {
        let fenced = format!("Here is the plan:\n```json\n{ONE}\n```\nDone.");
        assert_eq!(parse(&fenced).unwrap().tasks[0].id, "a");
        assert_eq!(parse(&format!("plan: {ONE} ok")).unwrap().reason, "small");
        // Fences and braces inside the plan's strings, prose after it.
        let tricky = ONE.replace("do it", "write a ```json fence } and {");
        let fenced = format!("```json\n{tricky}\n```\nMore words ``` and }} here.");
        assert_eq!(
            parse(&fenced).unwrap().tasks[0].prompt.as_deref(),
            Some("write a ```json fence } and {")
        );
    }

    #[test]
    fn says_what_is_wrong() {
        assert!(
            parse("no plan here")
                .unwrap_err()
                .contains("no JSON object")
        );
        let cut = &ONE[..40];
        assert!(
            parse(cut).unwrap_err().contains("ends early"),
            "{}",
            parse(cut).unwrap_err()
        );
        let bad = ONE.replace("\"why\"", "\"because\"");
        assert!(parse(&bad).unwrap_err().contains("unknown field `because`"));
        let two = r#"{"split": false, "reason": "r", "tasks": [{"id": "a", "why": "w", "run": "x"}, {"id": "b", "why": "w", "run": "y"}]}"#;
        assert!(parse(two).unwrap_err().contains("exactly one task"));
        let both = r#"{"split": true, "reason": "r", "tasks": [{"id": "a", "why": "w", "run": "x", "prompt": "p"}]}"#;
        assert!(parse(both).unwrap_err().contains("both `prompt` and `run`"));
    }

    /// The schema the model is held to bounds every string and list, and
    /// the number of tasks by `max_tasks`.
    #[test]
    fn the_answers_schema_bounds_its_strings_lists_and_tasks() {
        let schema = format(3, None).schema;
        assert_eq!(schema["properties"]["tasks"]["maxItems"], 3, "{schema}");
        assert_eq!(schema["properties"]["reason"]["maxLength"], 400, "{schema}");
        let [agent, command] = shapes(&schema);
        assert_eq!(agent["prompt"]["maxLength"], 2000, "{schema}");
        assert_eq!(command["run"]["maxLength"], 500, "{schema}");
        assert_eq!(agent["deps"]["maxItems"], 2, "{schema}");
        assert_eq!(schema["additionalProperties"], false, "{schema}");
    }

    /// The rules a shape can say: ids and deps in the id alphabet, one of
    /// `prompt` and `run`, no deps in a plan of one task, and `paths` from
    /// the base's list when there is one. A schema validator (the one
    /// `output_schema` uses) holds answers to it as a model server would.
    #[test]
    fn the_answers_schema_says_the_rules_a_shape_can_say() {
        let base = vec!["README.md".to_string(), "src".to_string()];
        let schema = format(2, Some(&base)).schema;
        let [agent, command] = shapes(&schema);
        assert!(agent.get("run").is_none() && command.get("prompt").is_none());
        assert_eq!(agent["paths"]["items"]["enum"], json!(["README.md", "src"]));
        let validator = jsonschema::validator_for(&schema).unwrap();
        let plan =
            |task: serde_json::Value| json!({"split": false, "reason": "r", "tasks": [task]});
        let good = json!({"id": "a-1", "why": "w", "prompt": "p", "paths": ["src"]});
        assert!(validator.is_valid(&plan(good.clone())), "{schema}");
        let run = json!({"id": "a", "why": "w", "run": "make", "deps": ["b"]});
        assert!(validator.is_valid(&plan(run)), "{schema}");
        for bad in [
            json!({"id": "a.md", "why": "w", "prompt": "p"}),
            json!({"id": "a", "why": "w", "prompt": "p", "run": "x"}),
            json!({"id": "a", "why": "w"}),
            json!({"id": "a", "why": "w", "prompt": "p", "paths": ["src/new"]}),
            json!({"id": "a", "why": "w", "prompt": "p", "deps": ["src/x"]}),
            json!({"id": "a", "why": "w", "prompt": "p", "deps": ["b", "c"]}),
        ] {
            assert!(!validator.is_valid(&plan(bad.clone())), "{bad}");
        }
        let one = format(1, None).schema;
        let [agent, _] = shapes(&one);
        assert_eq!(agent["deps"]["maxItems"], 0, "{one}");
        assert_eq!(agent["paths"]["items"]["type"], "string", "{one}");
    }

    /// A repair round holds the answer to the last one's ids, made ids and
    /// told apart, and each task's deps to the others.
    #[test]
    fn a_repair_round_is_held_to_the_last_answers_ids() {
        let last = ["parser-api", "parser-api", "Swarm.MD"].map(String::from);
        assert_eq!(
            pinned_ids(&last, 10),
            ["parser-api", "parser-api-2", "swarm-md"]
        );
        assert_eq!(pinned_ids(&last, 1), ["parser-api"]);
        let text = r#"```json
{"split": true, "reason": "r", "tasks": [{"id": "a.b", "why": "w"}, {"id": "c"}]}
```"#;
        assert_eq!(task_ids(text).unwrap(), ["a.b", "c"]);
        let schema = repair_format(3, None, &last).schema;
        let validator = jsonschema::validator_for(&schema).unwrap();
        let task =
            |id: &str, deps: &[&str]| json!({"id": id, "why": "w", "run": "x", "deps": deps});
        let plan =
            |tasks: Vec<serde_json::Value>| json!({"split": true, "reason": "r", "tasks": tasks});
        let good = plan(vec![
            task("parser-api", &[]),
            task("parser-api-2", &["parser-api"]),
            task("swarm-md", &["parser-api", "parser-api-2"]),
        ]);
        assert!(validator.is_valid(&good), "{schema}");
        // A prefix is fine: the model may merge tasks.
        assert!(validator.is_valid(&plan(vec![task("parser-api", &[])])));
        for bad in [
            plan(vec![task("renamed", &[])]),
            plan(vec![task("parser-api", &["parser-api"])]),
            plan(vec![task("parser-api", &["nowhere"])]),
            plan(vec![task("parser-api-2", &[])]),
            plan(vec![
                task("parser-api", &[]),
                task("parser-api-2", &[]),
                task("swarm-md", &[]),
                task("new", &[]),
            ]),
        ] {
            assert!(!validator.is_valid(&bad), "{bad}");
        }
    }

    /// The properties of a task's two shapes: an agent's and a command's.
    fn shapes(schema: &serde_json::Value) -> [serde_json::Value; 2] {
        let unit = &schema["$defs"]["Unit"]["anyOf"];
        [unit[0]["properties"].clone(), unit[1]["properties"].clone()]
    }
}
