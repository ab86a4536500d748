//! Model providers: everything that differs between wire protocols sits
//! behind [`Provider`], so the rest of the gateway (calls, retries, limits,
//! budgets, transcripts) and the plan never ask which one they talk to.
//! A provider encodes a request, decodes the answer (streamed or whole)
//! into the gateway's common events, classifies errors with their retry
//! hints, and gives the defaults the plan fills in for its models.
//!
//! Adding a provider is one file here implementing the trait, its variant
//! in `config::Provider` (the plan's `provider` key), and one arm in
//! [`for_kind`], where that key picks the implementation.

mod anthropic;
mod openai;

use std::time::Duration;

use serde_json::Value;
use swarm_protocol::agent::{Message, ToolSpec};

use super::Secret;
use super::stream::{Failure, StreamEvent};
use crate::gateway::config::{self, ModelConfig};

pub(crate) use anthropic::Anthropic;
pub(crate) use openai::OpenAi;

/// What one call asks of a model, in provider-neutral terms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ask<'a> {
    pub system: &'a str,
    /// Tools the model may call.
    pub tools: &'a [ToolSpec],
    /// The conversation so far; it starts with a user message.
    pub messages: &'a [Message],
    /// At most this many tokens of answer.
    pub max_tokens: u32,
    /// Stream the answer over SSE, or have it whole in one JSON response.
    pub stream: bool,
    /// Sampling temperature (`None`: the provider's default).
    pub temperature: Option<f64>,
    /// The answer must be one JSON value of this schema: asked for as the
    /// provider offers it (OpenAI `response_format` with a JSON schema,
    /// which llama.cpp's server turns into a grammar; Anthropic one tool
    /// the model is made to call), so that small and local models answer
    /// in shape.
    pub format: Option<Format<'a>>,
    /// Whether the answer must call one of `tools` (ignored without tools,
    /// and beside `format`, which forces its own).
    pub tool_choice: crate::gateway::config::ToolChoice,
}

/// A JSON schema an answer must have (see [`Ask::format`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Format<'a> {
    /// A name for it (`[A-Za-z0-9_-]`): the forced tool's, for Anthropic.
    pub name: &'a str,
    pub schema: &'a Value,
}

/// What a model of a provider gets when its `[models.NAME]` table leaves
/// it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Defaults {
    /// The provider's own API, without a trailing `/`.
    pub base_url: &'static str,
    /// The environment variable the API key is read from.
    pub api_key_env: &'static str,
}

/// One wire protocol. Implementations hold no state: everything a call
/// needs comes from the model's configuration and the conversation.
pub(crate) trait Provider: Send + Sync + std::fmt::Debug {
    /// The `base_url` and key variable of a model that names none.
    fn defaults(&self) -> Defaults;

    /// The JSON body of the request for `ask`, streamed or not as it says.
    fn body(&self, config: &ModelConfig, ask: &Ask<'_>) -> Value;

    /// The request to send a body with: URL from the configured base (some
    /// APIs choose streaming by URL, hence `stream`), and the provider's own
    /// headers, authentication with `key` included (the common JSON and
    /// accept headers are added by the caller).
    fn request(
        &self,
        http: &reqwest::Client,
        config: &ModelConfig,
        key: Option<&Secret>,
        stream: bool,
    ) -> reqwest::RequestBuilder;

    /// One SSE event (`event` name, `data` payload) as common events: text
    /// deltas, tool-call starts and argument pieces, usage (cached input
    /// counted as input), the stop reason, and [`StreamEvent::Done`] at the
    /// stream's end marker; or how an error the stream reported fails the
    /// attempt. The gateway folds the events into the answer itself.
    fn decode(&self, event: &str, data: &str) -> Result<Vec<StreamEvent>, Failure>;

    /// A whole (non-streamed) JSON response as the same common events, so
    /// the same fold builds the answer: each part's text, its tool calls
    /// with their arguments in one piece, usage, the stop reason (no
    /// `Done`: a whole response is complete by itself); or how an error in
    /// place of an answer fails the attempt.
    fn decode_whole(&self, response: &Value) -> Result<Vec<StreamEvent>, Failure>;

    /// Whether this provider's servers may end a stream right after the
    /// stop reason, without the end marker (the answer is then whole).
    fn stop_ends_stream(&self) -> bool {
        false
    }

    /// What an unsuccessful HTTP `status` with error body `body` means:
    /// wait (rate limited), retry, or give up. `message` is what to record.
    fn classify(
        &self,
        status: u16,
        body: &str,
        retry_after: Option<Duration>,
        message: String,
    ) -> Failure {
        classify_status(status, body, retry_after, message)
    }
}

/// The provider a plan's `provider` key names: the one place that maps
/// the key to an implementation.
pub(crate) fn for_kind(kind: config::Provider) -> &'static dyn Provider {
    match kind {
        config::Provider::Anthropic => &Anthropic,
        config::Provider::Openai => &OpenAi,
    }
}

/// The classification both built-in providers share: 429 and 529 are rate
/// limits (unless the account is out of credit), 408, 409 and 5xx are worth
/// a retry, any other status is final.
pub(crate) fn classify_status(
    status: u16,
    body: &str,
    retry_after: Option<Duration>,
    message: String,
) -> Failure {
    match status {
        // Out of credit, not over a rate: waiting will not help.
        429 if body.contains("insufficient_quota") => Failure::Fatal { message },
        429 | 529 => Failure::RateLimited {
            retry_after,
            message,
        },
        408 | 409 | 500..=599 => Failure::Transient {
            retry_after,
            message,
        },
        _ => Failure::Fatal { message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(provider: config::Provider, base_url: &str) -> ModelConfig {
        ModelConfig::for_test(provider, base_url)
    }

    #[test]
    fn each_provider_gives_its_own_defaults() {
        let anthropic = for_kind(config::Provider::Anthropic).defaults();
        assert_eq!(anthropic.base_url, "https://api.anthropic.com");
        assert_eq!(anthropic.api_key_env, "ANTHROPIC_API_KEY");
        let openai = for_kind(config::Provider::Openai).defaults();
        assert_eq!(openai.base_url, "https://api.openai.com/v1");
        assert_eq!(openai.api_key_env, "OPENAI_API_KEY");
    }

    #[test]
    fn each_provider_builds_its_own_url_and_authentication() {
        let http = reqwest::Client::new();
        let key = Secret::new("sk-test");
        let anthropic = config(config::Provider::Anthropic, "http://127.0.0.1:1");
        let provider = for_kind(anthropic.provider);
        let r = provider
            .request(&http, &anthropic, Some(&key), true)
            .build()
            .unwrap();
        assert_eq!(r.url().as_str(), "http://127.0.0.1:1/v1/messages");
        assert_eq!(r.headers()["x-api-key"], "sk-test");
        assert_eq!(r.headers()["anthropic-version"], "2023-06-01");
        assert!(r.headers().get("authorization").is_none());

        let openai = config(config::Provider::Openai, "http://127.0.0.1:1/v1");
        let provider = for_kind(openai.provider);
        let r = provider
            .request(&http, &openai, Some(&key), false)
            .build()
            .unwrap();
        assert_eq!(r.url().as_str(), "http://127.0.0.1:1/v1/chat/completions");
        assert_eq!(r.headers()["authorization"], "Bearer sk-test");
        assert!(r.headers().get("x-api-key").is_none());
        let r = provider
            .request(&http, &openai, None, true)
            .build()
            .unwrap();
        assert!(r.headers().get("authorization").is_none());
    }

    #[test]
    fn each_provider_encodes_the_same_conversation_in_its_own_shape() {
        use swarm_protocol::agent::{Block, Role};
        let messages = [Message {
            role: Role::User,
            content: vec![Block::Text { text: "hi".into() }],
        }];
        let tools = [ToolSpec {
            name: "bash".into(),
            description: "run".into(),
            input_schema: serde_json::json!({"type": "object"}),
        }];
        let ask = |stream| Ask {
            temperature: None,
            format: None,
            tool_choice: Default::default(),
            system: "sys",
            tools: &tools,
            messages: &messages,
            max_tokens: 7,
            stream,
        };
        let mut c = config(config::Provider::Anthropic, "http://h");
        let b = for_kind(c.provider).body(&c, &ask(true));
        // The stable start marked for the prompt cache: the system prompt
        // (the tools before it) and the conversation's last block.
        let ephemeral = serde_json::json!({"type": "ephemeral"});
        assert_eq!(b["system"][0]["text"], "sys");
        assert_eq!(b["system"][0]["cache_control"], ephemeral);
        assert_eq!(b["messages"][0]["content"][0]["cache_control"], ephemeral);
        c.prompt_cache = false;
        let b = for_kind(c.provider).body(&c, &ask(true));
        assert_eq!(b["system"], "sys");
        assert!(!b.to_string().contains("cache_control"));
        assert_eq!(b["max_tokens"], 7);
        assert_eq!(b["stream"], true);
        assert_eq!(b["messages"][0]["content"][0]["text"], "hi");
        assert_eq!(b["tools"][0]["input_schema"]["type"], "object");
        assert_eq!(for_kind(c.provider).body(&c, &ask(false))["stream"], false);

        let c = config(config::Provider::Openai, "http://h/v1");
        let b = for_kind(c.provider).body(&c, &ask(true));
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["messages"][1]["content"], "hi");
        assert_eq!(b["max_completion_tokens"], 7);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["tools"][0]["function"]["name"], "bash");
        // The API refuses `stream_options` on a request that does not
        // stream; a whole response always reports usage.
        let b = for_kind(c.provider).body(&c, &ask(false));
        assert_eq!(b["stream"], false);
        assert!(b.get("stream_options").is_none());
    }

    #[test]
    fn stream_errors_and_early_ends_are_the_providers_call() {
        use crate::gateway::stream::Assembler;
        let overloaded = r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#;
        assert!(matches!(
            Anthropic.decode("error", overloaded),
            Err(Failure::RateLimited { .. })
        ));
        let invalid = r#"{"type":"error","error":{"type":"invalid_request_error","message":"no"}}"#;
        assert!(matches!(
            Anthropic.decode("error", invalid),
            Err(Failure::Fatal { .. })
        ));
        assert!(matches!(
            OpenAi.decode("", r#"{"error":{"message":"x"}}"#),
            Err(Failure::Transient { .. })
        ));
        let finished =
            r#"{"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}"#;
        let mut b = Assembler::default();
        assert!(!b.is_whole(OpenAi.stop_ends_stream()));
        let events = OpenAi.decode("", finished).unwrap();
        assert!(!events.contains(&StreamEvent::Done));
        b.apply_all(events, &mut |_| {});
        // Anthropic's stream is whole only at `message_stop`.
        assert!(b.is_whole(OpenAi.stop_ends_stream()) && !b.is_whole(Anthropic.stop_ends_stream()));
    }

    #[test]
    fn statuses_are_classified_as_wait_retry_or_give_up() {
        let wait = Some(Duration::from_secs(3));
        let c = |status, body: &str| Anthropic.classify(status, body, wait, "m".into());
        assert_eq!(
            c(429, "slow down"),
            Failure::RateLimited {
                retry_after: wait,
                message: "m".into()
            }
        );
        assert!(matches!(c(529, ""), Failure::RateLimited { .. }));
        assert!(matches!(
            OpenAi.classify(
                429,
                r#"{"error":{"code":"insufficient_quota"}}"#,
                None,
                "m".into()
            ),
            Failure::Fatal { .. }
        ));
        assert_eq!(
            c(503, ""),
            Failure::Transient {
                retry_after: wait,
                message: "m".into()
            }
        );
        assert!(matches!(c(408, ""), Failure::Transient { .. }));
        assert!(matches!(c(401, ""), Failure::Fatal { .. }));
        assert!(matches!(c(400, ""), Failure::Fatal { .. }));
    }
}
