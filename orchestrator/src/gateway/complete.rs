//! One model call from the coordinator itself (a planner, a summariser),
//! not from an agent worker: [`Gateway::complete`]. It takes the same path
//! as an agent's turn — the model's concurrency cap and pacing, the
//! cool-down after a 429 or 529, retries with backoff ([`call`]), the run's
//! budget and, if the request names one, a [`BudgetScope`] of its own
//! (checked and settled as an agent task's budget is), and a transcript in
//! the same format — so coordinator-side calls are limited, counted and
//! recorded like everything else.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use swarm_protocol::agent::{Block, InvalidInput, Message, StopReason, ToolSpec, Usage};

use super::provider::Ask;
use super::tape::ReelId;
use super::transcript::Transcript;
use super::{BudgetScope, Gateway, GatewayError, call};

/// What to ask a model.
#[derive(Debug, Clone, Default)]
pub struct CompletionRequest {
    /// The model's name in the plan's `[models]` table (`default`).
    pub model: String,
    pub system: String,
    /// The conversation so far; it must start with a user message.
    pub messages: Vec<Message>,
    /// At most this many tokens of answer; `None`: the model's
    /// `max_tokens`. Lowered to what is left of the run's token budget and
    /// of `budget`'s.
    pub max_tokens: Option<u32>,
    /// Tools the model may call (their calls come back in
    /// [`Completion::tool_calls`]; nothing runs them here).
    pub tools: Vec<ToolSpec>,
    /// Names the caller in the transcript (`planner`).
    pub label: String,
    /// Where the call's transcript is appended; `None`: none is written.
    pub transcript: Option<PathBuf>,
    /// A budget the call counts against besides the run's, as an agent
    /// task's calls count against the task's: the call is refused once
    /// either is spent. Share one scope between calls (a planner's) to
    /// limit them together; `None`: the run's budget only.
    pub budget: Option<Arc<BudgetScope>>,
    /// The cassette the call is one turn of, when the run records or
    /// replays model traffic (`ReelId::Planner`, `ReelId::Replanner`).
    pub cassette: Option<ReelId>,
    /// The places the request may quote, by the placeholder that stands for
    /// them in the cassette's keys (`<run>`, `<repo>`).
    pub places: Vec<(String, PathBuf)>,
    /// The shape the answer must have, asked for as the provider offers
    /// it (see `provider::Ask::format`); the answer's text is then that
    /// JSON, whichever way the provider gave it.
    pub format: Option<AnswerFormat>,
}

/// A JSON schema an answer must have, and a name for it.
#[derive(Debug, Clone)]
pub struct AnswerFormat {
    /// `[A-Za-z0-9_-]`, up to 64 characters (a tool's name, for Anthropic).
    pub name: String,
    pub schema: Value,
}

/// A tool call in the model's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments; `{}` when they were not a JSON object.
    pub input: Value,
    /// Why the arguments were refused, if they were.
    pub invalid_input: Option<InvalidInput>,
}

/// The model's answer to a [`CompletionRequest`].
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The answer's text blocks, joined.
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    /// The whole answer in order, as it would go back into `messages`.
    pub content: Vec<Block>,
    pub stop_reason: StopReason,
    /// Reported by the server, or estimated when it reported none.
    pub usage: Usage,
    pub cost_usd: f64,
}

impl Gateway {
    /// Asks the model and returns its whole answer. The request does not
    /// stream: the server sends the answer as one JSON response when it is
    /// done, so the model's `timeout` bounds the wait for all of it;
    /// [`Gateway::complete_streaming`] suits answers that take longer.
    pub async fn complete(&self, request: &CompletionRequest) -> Result<Completion, GatewayError> {
        self.ask(request, false, &mut |_| {}).await
    }

    /// Like [`Gateway::complete`], but the answer is streamed (SSE) and
    /// each piece of text is handed to `on_text` as it arrives; `timeout`
    /// then bounds the silence between pieces.
    pub async fn complete_streaming(
        &self,
        request: &CompletionRequest,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, GatewayError> {
        self.ask(request, true, on_text).await
    }

    /// One call, streamed or not.
    async fn ask(
        &self,
        request: &CompletionRequest,
        stream: bool,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, GatewayError> {
        let model = &request.model;
        let endpoint = self
            .endpoint(model)
            .ok_or_else(|| GatewayError::UnknownModel(model.clone()))?;
        let config = &endpoint.config;
        let mut transcript = request.transcript.as_deref().map(Transcript::open);
        let mut write = |kind: &str, entry: Value| {
            if let Some(t) = &mut transcript {
                t.write(kind, entry);
            }
        };
        write(
            "start",
            json!({"label": request.label, "model": config.model, "provider": config.name,
                   "system": request.system, "tools": request.tools, "stream": stream}),
        );
        for m in &request.messages {
            write("message", json!({"role": m.role, "content": m.content}));
        }
        let wanted = request.max_tokens.unwrap_or(config.max_tokens);
        let scopes: Vec<Arc<BudgetScope>> = request.budget.iter().cloned().collect();
        let ask = |max_tokens| {
            endpoint.prepare(&Ask {
                temperature: None,
                system: &request.system,
                tools: &request.tools,
                messages: &request.messages,
                max_tokens,
                stream,
                format: request.format.as_ref().map(|f| super::provider::Format {
                    name: &f.name,
                    schema: &f.schema,
                }),
                tool_choice: Default::default(),
            })
        };
        let prompt = super::budget::prompt_hold(ask(wanted).body.to_string().len());
        let hold = match self.admit(&scopes, wanted, prompt, config.price).await {
            Ok(hold) => hold,
            Err(why) => {
                write("refused", json!({"why": "budget", "message": why}));
                return Err(GatewayError::Budget {
                    model: model.clone(),
                    why,
                });
            }
        };
        let prepared = ask(hold.max_tokens);

        let reel = match &request.cassette {
            None => None,
            Some(id) => self
                .reel(id.clone(), request.places.clone())
                .map_err(|message| GatewayError::Call {
                    model: model.clone(),
                    message,
                })?,
        };
        let result = {
            let mut on_retry = |reason: &str, wait: Duration, limited: bool| {
                write(
                    "retry",
                    json!({"reason": reason, "wait_ms": wait.as_millis() as u64,
                           "rate_limited": limited}),
                );
            };
            call::call(
                &self.http,
                &endpoint,
                &prepared,
                reel.as_ref(),
                on_text,
                &mut on_retry,
            )
            .await
        };
        let mut answer = match result {
            Ok(answer) => answer,
            Err(failed) => {
                let message = failed.message;
                if failed.spent.total() > 0 {
                    // What broke off mid-answer was paid for.
                    let mut cut = super::stream::Answer {
                        content: Vec::new(),
                        stop: StopReason::EndTurn,
                        usage: failed.spent,
                    };
                    self.settle(config, &mut cut, prepared.estimate, hold);
                }
                write("error", json!({"message": message}));
                return Err(GatewayError::Call {
                    model: model.clone(),
                    message,
                });
            }
        };
        let (usd, estimated) = self.settle(config, &mut answer, prepared.estimate, hold);
        if estimated {
            write(
                "note",
                json!({"message": "the server reported no token usage; it was estimated"}),
            );
        }
        write(
            "assistant",
            json!({"content": answer.content, "stop": answer.stop,
                   "usage": answer.usage, "cost_usd": usd}),
        );
        if let Some(format) = &request.format {
            as_text(&mut answer.content, &format.name);
        }
        Ok(completion(answer.content, answer.stop, answer.usage, usd))
    }
}

/// A call of the tool named `format` (how Anthropic gives a required
/// shape) as the text it stands for: the JSON of its input. The answer
/// then reads the same from every provider, and going back into a
/// conversation it needs no tool result.
fn as_text(content: &mut [Block], format: &str) {
    for block in content {
        if let Block::ToolCall { name, input, .. } = block
            && name == format
        {
            *block = Block::Text {
                text: input.to_string(),
            };
        }
    }
}

fn completion(
    content: Vec<Block>,
    stop_reason: StopReason,
    usage: Usage,
    cost_usd: f64,
) -> Completion {
    let mut texts = Vec::new();
    let mut tool_calls = Vec::new();
    for block in &content {
        match block {
            Block::Text { text } => texts.push(text.as_str()),
            Block::ToolCall {
                id,
                name,
                input,
                invalid_input,
            } => tool_calls.push(ToolCall {
                id: id.clone(),
                name: name.clone(),
                input: input.clone(),
                invalid_input: invalid_input.clone(),
            }),
            Block::ToolResult { .. } => {}
        }
    }
    Completion {
        text: texts.concat(),
        tool_calls,
        stop_reason,
        usage,
        cost_usd,
        content,
    }
}
