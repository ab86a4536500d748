//! A model call's request, made once from the conversation by the
//! model's provider and sent as it is on every attempt ([`super::attempt`])
//! of the call and its retries ([`super::call`]).

use serde_json::Value;

use super::Endpoint;
use super::provider::Ask;

/// A request ready to send, built once and sent again on every retry.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub body: Value,
    /// Whether the answer is streamed over SSE or comes whole.
    pub stream: bool,
    /// About how many tokens the request is, to pace it by.
    pub estimate: u64,
    /// The task whose call it is, said to a cluster's relay (which counts
    /// it against that task's budgets on the coordinator).
    pub task: Option<String>,
}

impl Endpoint {
    /// The provider's request for `ask` to this model.
    pub(crate) fn prepare(&self, ask: &Ask<'_>) -> Prepared {
        let body = self.provider.body(&self.config, ask);
        // About four bytes a token: enough to pace by tokens per minute.
        let estimate = body.to_string().len() as u64 / 4;
        Prepared {
            body,
            stream: ask.stream,
            estimate,
            task: None,
        }
    }
}
