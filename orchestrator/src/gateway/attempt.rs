//! One HTTP attempt of a model call: send the request, read the answer
//! through the provider's decoder into the shared fold ([`Assembler`]) —
//! an SSE stream event by event while text is handed on as it arrives, or
//! a whole JSON response at once — and say what kind of failure it was
//! when it fails (wait it out, retry, or give up).

use std::sync::Arc;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::Value;

use super::reply::Reply;
use super::request::{Prepared, json_call};
use super::stream::{Answer, Assembler, Failure, refuses_the_request};
use super::tape::{Lookup, Recorder, Reel};
use super::{Endpoint, redact};

/// Most bytes of a whole (non-streamed) answer read; `max_tokens` keeps
/// real answers far below it.
const MAX_WHOLE: usize = 16 << 20;

/// What one attempt ended with: the answer, or why not and what of an
/// answer had arrived before it broke off (its tokens are paid for).
pub(crate) type Attempted = Result<Answer, (Failure, Option<Answer>)>;

/// Runs one attempt of call `turn` of `request`, handing each piece of
/// text to `on_text` as it arrives (all of it at once when the answer
/// comes whole). A replaying `reel` answers from its cassette instead of
/// the provider; a recording one keeps the exchange.
pub(crate) async fn attempt(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    request: &Prepared,
    reel: Option<&Arc<Reel>>,
    turn: u32,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Attempted {
    let config = &endpoint.config;
    let key = endpoint.key.as_ref();
    let provider = endpoint.provider;
    let mut built = json_call(
        provider.request(http, config, key, request.stream),
        request.stream,
    );
    if endpoint.relayed
        && let Some(task) = &request.task
    {
        built = built.header(super::relay::TASK, task.as_str());
    }
    let built = built
        .body(serde_json::to_vec(&request.body).unwrap_or_default())
        .build();
    let built = match built {
        Ok(b) => b,
        Err(e) => {
            return Err((
                Failure::Fatal {
                    message: redact(
                        &format!("make the request: {}", crate::error_chain(&e)),
                        key,
                    ),
                },
                None,
            ));
        }
    };
    let path = built.url().path().to_string();
    let lookup = reel.map_or(Lookup::Network, |r| r.lookup(turn, &path, &request.body));
    let mut recorder = None;
    let reply = match lookup {
        Lookup::Served(recorded) => Reply::replayed(&recorded),
        Lookup::Miss(message) => return Err((Failure::NotRecorded { message }, None)),
        Lookup::Network => {
            // A model that needs a key whose variable was unset when the
            // run started (one the plan declares but none of its own tasks
            // used, for a subtask that asked for it; any model of a replayed
            // run): say so rather than send no key.
            if key.is_none()
                && let Some(var) = &config.api_key_env
            {
                return Err((
                    Failure::Fatal {
                        message: format!(
                            "the model has no API key: ${var} was not set when the run started"
                        ),
                    },
                    None,
                ));
            }
            let response = match tokio::time::timeout(config.timeout, http.execute(built)).await {
                Err(_) => return Err((silent(endpoint), None)),
                Ok(Err(e)) => {
                    return Err((
                        Failure::transient(redact(
                            &format!("reach {}: {}", config.base_url, crate::error_chain(&e)),
                            key,
                        )),
                        None,
                    ));
                }
                Ok(Ok(r)) => r,
            };
            // An answer, or the provider's refusal of the request itself
            // (the same request gets it again): what a replay must give.
            let status = response.status().as_u16();
            if response.status().is_success() || refuses_the_request(status) {
                recorder = reel.and_then(|r| r.recorder(turn, &path, &request.body));
            }
            Reply::from_http(response)
        }
    };
    let status = reply.status;
    if !status.is_success() {
        let retry_after = retry_after(&reply.headers);
        let content_type = reply.content_type();
        let over_budget = super::relay::refused_for_budget(&reply.headers);
        let text: String = tokio::time::timeout(config.timeout, read_bounded(reply))
            .await
            .unwrap_or_default();
        let message = redact(
            &format!("HTTP {}: {}", status.as_u16(), error_message(&text)),
            key,
        );
        if over_budget {
            return Err((Failure::Budget { message: text }, None));
        }
        if let Some(recorder) = recorder {
            recorder.refusal(status.as_u16(), content_type, &redact(&text, key));
        }
        let failure = match provider.classify(status.as_u16(), &text, retry_after, message) {
            Failure::Fatal { message } if refuses_the_request(status.as_u16()) => {
                Failure::Refused { message }
            }
            other => other,
        };
        return Err((failure, None));
    }
    let content_type = reply.content_type();
    if !request.stream {
        let result = whole(endpoint, reply, on_text, recorder.as_mut()).await;
        if let Some(recorder) = recorder {
            let usage = result.as_ref().ok().map(|a| a.usage);
            recorder.finish(content_type, usage, result.is_ok());
        }
        return result.map_err(|f| (f, None));
    }

    let mut answer = Assembler::default();
    let result = {
        let mut taping = recorder.as_mut();
        let body = reply.body.inspect(move |chunk| {
            if let (Some(r), Ok(bytes)) = (taping.as_mut(), chunk) {
                r.chunk(bytes, true);
            }
        });
        read_stream(endpoint, body.eventsource(), &mut answer, on_text).await
    };
    let answer = answer.finish();
    if let Some(recorder) = recorder {
        recorder.finish(content_type, Some(answer.usage), result.is_ok());
    }
    match result {
        Ok(()) => Ok(answer),
        Err(failure) => Err((failure, Some(answer))),
    }
}

/// Reads an SSE answer into `answer` until its end.
async fn read_stream<S, E>(
    endpoint: &Endpoint,
    mut events: S,
    answer: &mut Assembler,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<(), Failure>
where
    S: futures_util::Stream<Item = Result<eventsource_stream::Event, E>> + Unpin,
    E: std::fmt::Display,
{
    let key = endpoint.key.as_ref();
    let provider = endpoint.provider;
    let stop_ends = provider.stop_ends_stream();
    loop {
        let event = match tokio::time::timeout(endpoint.config.timeout, events.next()).await {
            Err(_) => return Err(silent(endpoint)),
            Ok(None) if answer.is_whole(stop_ends) => return Ok(()),
            Ok(None) => {
                return Err(Failure::transient(
                    "the stream ended before the answer was complete",
                ));
            }
            Ok(Some(Err(e))) => {
                return Err(Failure::transient(redact(
                    &format!("the stream broke: {e}"),
                    key,
                )));
            }
            Ok(Some(Ok(event))) => event,
        };
        answer.apply_all(provider.decode(&event.event, &event.data)?, on_text);
        // Whatever a server sends after its end marker is not part of the
        // answer.
        if answer.is_whole(false) {
            return Ok(());
        }
    }
}

/// Reads a whole JSON answer (every chunk within the model's `timeout`)
/// and folds the provider's events for it.
async fn whole(
    endpoint: &Endpoint,
    reply: Reply,
    on_text: &mut (dyn FnMut(&str) + Send),
    recorder: Option<&mut Recorder>,
) -> Result<Answer, Failure> {
    let key = endpoint.key.as_ref();
    let mut body = Vec::new();
    let mut chunks = reply.body;
    loop {
        match tokio::time::timeout(endpoint.config.timeout, chunks.next()).await {
            Err(_) => return Err(silent(endpoint)),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(Failure::transient(redact(
                    &format!("the answer broke: {e}"),
                    key,
                )));
            }
            Ok(Some(Ok(chunk))) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_WHOLE {
                    return Err(Failure::transient(format!(
                        "the model's answer is larger than {} MiB",
                        MAX_WHOLE >> 20
                    )));
                }
            }
        }
    }
    if let Some(recorder) = recorder {
        recorder.chunk(&body, false);
    }
    let response: Value = serde_json::from_slice(&body)
        .map_err(|e| Failure::transient(format!("the model sent an unreadable answer: {e}")))?;
    let mut answer = Assembler::default();
    answer.apply_all(endpoint.provider.decode_whole(&response)?, on_text);
    Ok(answer.finish())
}

fn silent(endpoint: &Endpoint) -> Failure {
    Failure::transient(format!(
        "the model sent nothing for {}",
        humantime::format_duration(endpoint.config.timeout)
    ))
}

/// Longest wait a provider can ask for; anything beyond is taken as this.
const MAX_RETRY_AFTER: f64 = 3600.0;

/// `retry-after-ms` (OpenAI), or `retry-after` in seconds or as an HTTP
/// date.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let seconds = |s: f64| {
        (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(MAX_RETRY_AFTER)))
    };
    if let Some(wait) = get("retry-after-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|ms| seconds(ms / 1000.0))
    {
        return Some(wait);
    }
    let value = get("retry-after")?.trim();
    if let Ok(s) = value.parse::<f64>() {
        return seconds(s);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let wait = at
        .duration_since(std::time::SystemTime::now())
        .unwrap_or(Duration::ZERO);
    seconds(wait.as_secs_f64())
}

/// The start of an error response's body (at most 64 KiB are read).
async fn read_bounded(reply: Reply) -> String {
    let mut body = Vec::new();
    let mut stream = reply.body;
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= 64 << 10 {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// The provider's own words from an error body (both providers put them at
/// `error.message`), or the start of the body.
fn error_message(body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        v.pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    from_json.unwrap_or_else(|| body.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_milliseconds_and_dates_and_refuses_nonsense() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
        h.insert("retry-after-ms", "inf".parse().unwrap());
        h.insert("retry-after", "1e300".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3600)));
        let later = std::time::SystemTime::now() + Duration::from_secs(30);
        h.remove("retry-after-ms");
        h.insert(
            "retry-after",
            httpdate::fmt_http_date(later).parse().unwrap(),
        );
        let wait = retry_after(&h).unwrap();
        assert!(
            wait > Duration::from_secs(27) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
    }
}
