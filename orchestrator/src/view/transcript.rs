//! A task's transcript (the agent's JSON lines) as text for people, and
//! the replans of a run's journal: what `swarm logs` and the MCP server
//! show.

use serde_json::Value;

use crate::escape;

/// Characters of a tool result shown in a transcript.
const RESULT_CHARS: usize = 600;

/// A transcript (JSON lines) as text for people: each turn's text, tool
/// calls and (clipped) results, retries, verify results and the end.
pub fn render(jsonl: &str) -> String {
    let mut out = String::new();
    let mut turn = 0;
    // A coordinator-side call (the planner's) records its whole
    // conversation at every call: only the messages not shown yet are.
    let (mut shown, mut at) = (0, 0);
    for line in jsonl.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let kind = v["type"].as_str().unwrap_or_default();
        match kind {
            "start" if v.get("label").is_some() => {
                at = 0;
                if turn == 0 {
                    out.push_str(&format!("{} with model {}\n", s("label"), s("model")));
                }
            }
            "start" if v.get("agent").is_some() => out.push_str(&format!(
                "{} on task {} with model {}\n",
                s("agent"),
                s("task"),
                s("model"),
            )),
            "start" => out.push_str(&format!(
                "agent of task {} with model {} ({} tools)\n",
                s("task"),
                s("model"),
                v["tools"].as_array().map_or(0, Vec::len)
            )),
            "message" => {
                at += 1;
                if at > shown && v["role"] == "user" {
                    shown = at;
                    for block in v["content"].as_array().into_iter().flatten() {
                        if let Some(text) = block["text"].as_str() {
                            out.push_str(&format!("\n> {}\n", text.replace('\n', "\n> ")));
                        }
                    }
                }
            }
            "user" => {
                for block in v["content"].as_array().into_iter().flatten() {
                    match block["type"].as_str() {
                        Some("text") => out.push_str(&format!(
                            "\n> {}\n",
                            block["text"]
                                .as_str()
                                .unwrap_or_default()
                                .replace('\n', "\n> ")
                        )),
                        Some("tool_result") => out.push_str(&format!(
                            "  <- {}{}\n",
                            if block["is_error"].as_bool() == Some(true) {
                                "error: "
                            } else {
                                ""
                            },
                            clip(block["content"].as_str().unwrap_or_default(), RESULT_CHARS)
                                .replace('\n', "\n     ")
                        )),
                        _ => {}
                    }
                }
            }
            "assistant" => {
                turn += 1;
                // Its answer is the next message of the conversation.
                at += 1;
                shown = shown.max(at);
                out.push_str(&format!(
                    "\n[turn {turn}] {} tokens in, {} out\n",
                    v["usage"]["input_tokens"], v["usage"]["output_tokens"]
                ));
                for block in v["content"].as_array().into_iter().flatten() {
                    match block["type"].as_str() {
                        Some("text") => {
                            out.push_str(block["text"].as_str().unwrap_or_default());
                            out.push('\n');
                        }
                        Some("tool_call") => out.push_str(&format!(
                            "  -> {} {}\n",
                            block["name"].as_str().unwrap_or_default(),
                            clip(&block["input"].to_string(), 300)
                        )),
                        _ => {}
                    }
                }
            }
            "retry" => out.push_str(&format!(
                "  (retrying in {} ms: {})\n",
                v["wait_ms"],
                s("reason")
            )),
            "finished" => out.push_str(&format!("\nfinished: {}\n", s("summary"))),
            "verify" => {
                if v["passed"].as_bool() == Some(true) {
                    out.push_str("verify: passed\n");
                } else {
                    out.push_str(&format!(
                        "verify: failed{}\n{}\n",
                        if v["repair"].as_bool() == Some(true) {
                            " (repair round follows)"
                        } else {
                            ""
                        },
                        clip(&s("output"), 2000)
                    ));
                }
            }
            "refused" | "error" => out.push_str(&format!("\nstopped: {}\n", s("message"))),
            "end" => {
                let r = &v["report"];
                out.push_str(&format!(
                    "\nend: {} after {} turns, {} tokens, ${:.4}\n",
                    r["outcome"].as_str().unwrap_or_default(),
                    r["turns"],
                    r["usage"]["input_tokens"].as_u64().unwrap_or(0)
                        + r["usage"]["output_tokens"].as_u64().unwrap_or(0),
                    r["cost_usd"].as_f64().unwrap_or(0.0)
                ));
            }
            _ => {}
        }
    }
    out
}

/// The replans of a run's journal: for each, the failed task and why, and
/// the change (a diff of `[[task]]` tables) or why there was none.
pub fn replans(events: &[swarm_protocol::Event]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for event in events {
        match &event.body {
            swarm_protocol::EventBody::ReplanStarted {
                task,
                round,
                rounds,
                reason,
            } => {
                // The reason and the model's words are untrusted: one
                // line each, so that they cannot forge lines of this log.
                let _ = writeln!(
                    out,
                    "replan {round} of {rounds} ({}): task `{task}` failed: {}",
                    event.ts,
                    escape::line(reason)
                );
            }
            swarm_protocol::EventBody::Replanned {
                reason,
                diff,
                error,
                ..
            } => {
                match error {
                    Some(why) => {
                        let _ = writeln!(out, "no fix: {}", escape::line(why));
                    }
                    None => {
                        let _ = writeln!(out, "fix: {}", escape::line(reason));
                        out.push_str(diff);
                    }
                }
                out.push('\n');
            }
            _ => {}
        }
    }
    out
}

fn clip(text: &str, max: usize) -> String {
    let mut s: String = text.chars().take(max).collect();
    if s.len() < text.len() {
        s.push_str(" [...]");
    }
    s
}
