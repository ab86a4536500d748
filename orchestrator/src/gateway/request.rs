//! A model call's request, made once from the conversation by the
//! model's provider and sent as it is on every attempt ([`super::attempt`])
//! of the call and its retries ([`super::call`]); and what every call the
//! gateway sends upstream says of its body (its own, a door's, the
//! relay's): [`json_call`].

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

/// `request` with a JSON body, asking for an SSE stream (`stream`) or a
/// whole JSON answer.
pub(crate) fn json_call(request: reqwest::RequestBuilder, stream: bool) -> reqwest::RequestBuilder {
    let accept = match stream {
        true => "text/event-stream",
        false => "application/json",
    };
    request
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::ACCEPT, accept)
}
