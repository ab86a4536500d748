//! A provider's answer on its way in, wherever it comes from: the
//! provider over HTTP, or a cassette being replayed. What reads it (the
//! decoders and the shared fold, the door passing it on) sees the same
//! status, headers and bytes either way.

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use swarm_protocol::cassette::RecordedResponse;

/// An answer's status, headers and body.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as it arrives; an error says how it broke.
    pub body: BoxStream<'static, Result<Bytes, String>>,
}

impl Reply {
    /// The provider's answer.
    pub fn from_http(response: reqwest::Response) -> Self {
        Self {
            status: response.status(),
            headers: response.headers().clone(),
            body: response
                .bytes_stream()
                .map(|chunk| chunk.map_err(|e| crate::error_chain(&e)))
                .boxed(),
        }
    }

    /// A recorded answer, all of it at once.
    pub fn replayed(recorded: &RecordedResponse) -> Self {
        let mut headers = HeaderMap::new();
        let content_type = recorded.content_type.clone().unwrap_or_else(|| {
            match recorded.is_stream() {
                true => "text/event-stream",
                false => "application/json",
            }
            .to_string()
        });
        if let Ok(v) = HeaderValue::from_str(&content_type) {
            headers.insert(CONTENT_TYPE, v);
        }
        let mut chunks = vec![Ok(Bytes::from(recorded.wire()))];
        if !recorded.complete {
            chunks.push(Err("the recorded stream broke here".to_string()));
        }
        Self {
            status: StatusCode::from_u16(recorded.status).unwrap_or(StatusCode::OK),
            headers,
            body: futures_util::stream::iter(chunks).boxed(),
        }
    }

    pub fn content_type(&self) -> Option<String> {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}
