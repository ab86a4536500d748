//! `Gateway::complete` (whole answers, `stream: false` on the wire) and
//! `Gateway::complete_streaming` (SSE), the coordinator's own model call,
//! against the mock model server on loopback for both wire protocols: what
//! was sent, usage counted against the run's budget, a 429's retry-after
//! waited out, 5xx and cut answers retried, and the transcript.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use swarm_orchestrator::gateway::{BudgetScope, CompletionRequest, Gateway, GatewayError, Secret};
use swarm_orchestrator::plan::{Budget, ModelConfig, Provider};
use swarm_protocol::agent::{Block, Message, Role, StopReason, ToolSpec};

use crate::support::model::{MockModel, Options, Reply, Wire, text, tool};
use crate::support::snapshot_settings;

const KEY: &str = "sk-test-complete";

fn gateway(mock: &MockModel, wire: Wire, budget: Budget) -> Arc<Gateway> {
    gateway_with_timeout(mock, wire, budget, Duration::from_secs(10))
}

fn gateway_with_timeout(
    mock: &MockModel,
    wire: Wire,
    budget: Budget,
    timeout: Duration,
) -> Arc<Gateway> {
    let provider = match wire {
        Wire::Anthropic => Provider::Anthropic,
        // The gateway's own calls speak Chat Completions; the Responses
        // API is only passed through for agent CLIs.
        Wire::OpenAi | Wire::Responses => Provider::Openai,
    };
    let config = ModelConfig {
        name: "default".into(),
        provider,
        model: "mock-model".into(),
        base_url: mock.base_url(wire),
        api_key_env: None,
        max_tokens: 1000,
        concurrency: 2,
        requests_per_minute: None,
        tokens_per_minute: None,
        retries: 2,
        timeout,
        price: None,
        prompt_cache: true,
        tool_choice: Default::default(),
        span: 0..0,
    };
    let models = BTreeMap::from([("default".to_string(), config)]);
    let keys = BTreeMap::from([("default".to_string(), Secret::new(KEY))]);
    Arc::new(Gateway::new(&models, &keys, budget).unwrap())
}

/// The mock checks that every request streams, or that none does.
fn options(stream: bool) -> Options {
    Options {
        api_key: Some(KEY.into()),
        stream: Some(stream),
        ..Options::new("mock-model")
    }
}

fn request(prompt: &str, transcript: Option<std::path::PathBuf>) -> CompletionRequest {
    CompletionRequest {
        model: "default".into(),
        system: "You split goals into tasks.".into(),
        messages: vec![Message {
            role: Role::User,
            content: vec![Block::Text {
                text: prompt.into(),
            }],
        }],
        label: "planner".into(),
        transcript,
        ..CompletionRequest::default()
    }
}

fn transcript(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn answers_with_text_tools_and_usage(wire: Wire, stream: bool) {
    let mock = MockModel::start(options(stream), |_| Reply::Answer {
        parts: vec![
            text("Two tasks."),
            tool("c1", "add_task", json!({"name": "a"})),
        ],
        input_tokens: 40,
        output_tokens: 2,
    });
    let gw = gateway(&mock, wire, Budget::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.jsonl");
    let mut req = request("split this goal", Some(path.clone()));
    req.tools = vec![ToolSpec {
        name: "add_task".into(),
        description: "add a task".into(),
        input_schema: json!({"type": "object"}),
    }];
    req.max_tokens = Some(77);
    let done = if stream {
        gw.complete_streaming(&req, &mut |_| {}).await
    } else {
        gw.complete(&req).await
    };
    let done = done.unwrap();
    assert_eq!(done.text, "Two tasks.");
    assert_eq!(done.tool_calls.len(), 1);
    assert_eq!(done.tool_calls[0].name, "add_task");
    assert_eq!(done.tool_calls[0].input["name"], "a");
    assert_eq!(done.stop_reason, StopReason::ToolUse);
    assert_eq!(done.usage.total(), 42);
    assert_eq!(gw.spent().0.total(), 42);

    mock.assert_clean();
    let calls = mock.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].wire, wire);
    assert_eq!(calls[0].stream, stream);
    assert_eq!(calls[0].system, "You split goals into tasks.");
    assert_eq!(calls[0].conversation, "split this goal");
    assert_eq!(calls[0].tools, ["add_task"]);
    let max = match wire {
        Wire::Anthropic => &calls[0].body["max_tokens"],
        Wire::OpenAi => &calls[0].body["max_completion_tokens"],
        Wire::Responses => &calls[0].body["max_output_tokens"],
    };
    assert_eq!(max, 77);

    let lines = transcript(&path);
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert_eq!(kinds, ["start", "message", "assistant"]);
    assert_eq!(lines[0]["label"], "planner");
    assert_eq!(lines[0]["stream"], stream);
    assert_eq!(lines[2]["usage"]["input_tokens"], 40);
    assert!(!std::fs::read_to_string(&path).unwrap().contains(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_answers_with_text_tools_and_usage_anthropic() {
    answers_with_text_tools_and_usage(Wire::Anthropic, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_answers_with_text_tools_and_usage_openai() {
    answers_with_text_tools_and_usage(Wire::OpenAi, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_streaming_answers_with_text_tools_and_usage_anthropic() {
    answers_with_text_tools_and_usage(Wire::Anthropic, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_streaming_answers_with_text_tools_and_usage_openai() {
    answers_with_text_tools_and_usage(Wire::OpenAi, true).await;
}

async fn streams_text_as_it_arrives(wire: Wire) {
    let mock = MockModel::start(options(true), |_| {
        Reply::answer(vec![text("alpha beta gamma delta epsilon")])
    });
    let gw = gateway(&mock, wire, Budget::default());
    let mut pieces = Vec::new();
    let done = gw
        .complete_streaming(&request("go", None), &mut |t| pieces.push(t.to_string()))
        .await
        .unwrap();
    assert_eq!(done.text, "alpha beta gamma delta epsilon");
    assert_eq!(pieces.concat(), done.text);
    assert_eq!(done.stop_reason, StopReason::EndTurn);
    mock.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_streams_text_as_it_arrives_anthropic() {
    streams_text_as_it_arrives(Wire::Anthropic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_streams_text_as_it_arrives_openai() {
    streams_text_as_it_arrives(Wire::OpenAi).await;
}

async fn counts_against_the_run_budget(wire: Wire) {
    let mock = MockModel::start(options(false), |_| Reply::Answer {
        parts: vec![text("ok")],
        input_tokens: 110,
        output_tokens: 20,
    });
    let budget = Budget {
        tokens: Some(400),
        usd: None,
    };
    let gw = gateway(&mock, wire, budget);
    gw.complete(&request("one", None)).await.unwrap();
    gw.complete(&request("two", None)).await.unwrap();
    // 140 tokens are left: the prompt and the answer must fit in them.
    gw.complete(&request("three", None)).await.unwrap();
    assert_eq!(gw.spent().0.total(), 390);
    // 10 are left, fewer than a prompt: refused before it is sent.
    let refused = gw.complete(&request("four", None)).await.unwrap_err();
    assert!(
        matches!(&refused, GatewayError::Budget { why, .. }
            if why.starts_with("the run has 10 of its 400 tokens left, less than the call's prompt")),
        "{refused}"
    );
    let calls = mock.calls();
    assert_eq!(calls.len(), 3, "a refused call reaches no server");
    let max: Vec<u64> = calls
        .iter()
        .map(|c| {
            match wire {
                Wire::Anthropic => &c.body["max_tokens"],
                Wire::OpenAi => &c.body["max_completion_tokens"],
                Wire::Responses => &c.body["max_output_tokens"],
            }
            .as_u64()
            .unwrap()
        })
        .collect();
    // Each asked for what the budget left after its prompt, no more.
    let prompt = |c: &crate::support::model::Call| c.body.to_string().len() as u64 / 3;
    for (i, (left, c)) in [400u64, 270, 140].iter().zip(&calls).enumerate() {
        assert!(max[i] + prompt(c) <= *left, "call {i}: {max:?}");
        assert!(max[i] + prompt(c) + 10 >= *left, "call {i}: {max:?}");
    }
    mock.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_counts_against_the_run_budget_anthropic() {
    counts_against_the_run_budget(Wire::Anthropic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_counts_against_the_run_budget_openai() {
    counts_against_the_run_budget(Wire::OpenAi).await;
}

/// A planner's calls share a budget scope: refused once it is spent, each
/// asking for no more than is left of it or of the run, while calls outside
/// it go on under the run's budget.
async fn counts_against_a_budget_scope(wire: Wire) {
    let mock = MockModel::start(options(false), |_| Reply::Answer {
        parts: vec![text("ok")],
        input_tokens: 110,
        output_tokens: 20,
    });
    let gw = gateway(
        &mock,
        wire,
        Budget {
            tokens: Some(1000),
            usd: None,
        },
    );
    let planner = Arc::new(BudgetScope::new(
        "the planner",
        Budget {
            tokens: Some(300),
            usd: None,
        },
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("planner.jsonl");
    let planned = |prompt: &str| CompletionRequest {
        budget: Some(Arc::clone(&planner)),
        ..request(prompt, Some(path.clone()))
    };
    gw.complete(&planned("one")).await.unwrap();
    gw.complete(&planned("two")).await.unwrap();
    let refused = gw.complete(&planned("three")).await.unwrap_err();
    assert!(
        matches!(&refused, GatewayError::Budget { why, .. }
            if why.starts_with("the planner has 40 of its 300 tokens left, less than the call's prompt")),
        "{refused}"
    );
    gw.complete(&request("four", None)).await.unwrap();
    assert_eq!(planner.spent().0.total(), 260);
    assert_eq!(gw.spent().0.total(), 390);

    let calls = mock.calls();
    let max: Vec<&Value> = calls
        .iter()
        .map(|c| match wire {
            Wire::Anthropic => &c.body["max_tokens"],
            Wire::OpenAi => &c.body["max_completion_tokens"],
            Wire::Responses => &c.body["max_output_tokens"],
        })
        .collect();
    // What the scope's 300, then its last 170, left after the prompt;
    // outside it, the run's last 740.
    let prompt = |c: &crate::support::model::Call| c.body.to_string().len() as u64 / 3;
    for (i, left) in [300u64, 170].into_iter().enumerate() {
        let (m, p) = (max[i].as_u64().unwrap(), prompt(&calls[i]));
        assert!(m + p <= left && m + p + 10 >= left, "call {i}: {max:?}");
    }
    assert!(
        max[2].as_u64().unwrap() + prompt(&calls[2]) <= 740,
        "{max:?}"
    );
    mock.assert_clean();
    let lines = transcript(&path);
    let refusal = lines.iter().find(|l| l["type"] == "refused").unwrap();
    assert_eq!(refusal["why"], "budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_counts_against_a_budget_scope_anthropic() {
    counts_against_a_budget_scope(Wire::Anthropic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_counts_against_a_budget_scope_openai() {
    counts_against_a_budget_scope(Wire::OpenAi).await;
}

/// A whole answer's 429 is waited out like a stream's.
async fn waits_out_a_429(wire: Wire) {
    let mock = MockModel::start(options(false), |call| {
        if call.attempt == 1 {
            Reply::rate_limited(1)
        } else {
            Reply::text("after the wait")
        }
    });
    let gw = gateway(&mock, wire, Budget::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let started = Instant::now();
    let done = gw
        .complete(&request("busy", Some(path.clone())))
        .await
        .unwrap();
    assert_eq!(done.text, "after the wait");
    assert!(started.elapsed() >= Duration::from_millis(950));
    let calls = mock.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| !c.stream));
    assert_eq!(mock.stats().early_retries, 0);
    mock.assert_clean();
    let lines = transcript(&path);
    let retry = lines.iter().find(|l| l["type"] == "retry").unwrap();
    assert_eq!(retry["rate_limited"], true);
    assert_eq!(retry["wait_ms"], 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_waits_out_a_429_anthropic() {
    waits_out_a_429(Wire::Anthropic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_waits_out_a_429_openai() {
    waits_out_a_429(Wire::OpenAi).await;
}

/// A 5xx and a whole answer cut off halfway are retried with backoff (and
/// counted against `retries`, 2 here).
async fn retries_a_5xx_and_a_cut_answer(wire: Wire) {
    let mock = MockModel::start(options(false), |call| match call.attempt {
        1 => Reply::status(503, "upstream busy"),
        2 => Reply::Cut {
            parts: vec![text("half of an answer that never ends")],
            after_events: 0,
        },
        _ => Reply::text("third time"),
    });
    let gw = gateway(&mock, wire, Budget::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let done = gw
        .complete(&request("flaky", Some(path.clone())))
        .await
        .unwrap();
    assert_eq!(done.text, "third time");
    assert_eq!(mock.calls().len(), 3);
    mock.assert_clean();
    let lines = transcript(&path);
    let retries: Vec<&Value> = lines.iter().filter(|l| l["type"] == "retry").collect();
    assert_eq!(retries.len(), 2, "{lines:#?}");
    assert!(retries.iter().all(|r| r["rate_limited"] == false));
    // The second reason goes on with the HTTP client's own words, which
    // change with its version: swarm's part of it only.
    let reasons: Vec<&str> = retries
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    let broke = reasons[1]
        .split_once(": ")
        .map_or(reasons[1], |(ours, _)| ours);
    // Both wires say the same: one snapshot for both tests.
    insta::allow_duplicates! {
        snapshot_settings().bind(|| {
            insta::assert_snapshot!(format!("{}\n{broke}: …", reasons[0]), @"
            HTTP 503: upstream busy
            the answer broke: …
            ")
        });
    }

    // A third failure is one too many.
    let mock = MockModel::start(options(false), |_| Reply::status(500, "down"));
    let gw = gateway(&mock, wire, Budget::default());
    let failed = gw.complete(&request("down", None)).await.unwrap_err();
    assert!(matches!(&failed, GatewayError::Call { .. }), "{failed}");
    insta::allow_duplicates! {
        snapshot_settings().bind(|| insta::assert_snapshot!(failed.to_string(), @"call model `default`: HTTP 500: down (gave up after 2 retries)"));
    }
    assert_eq!(mock.calls().len(), 3);
}

/// A server that sends its headers and then nothing is given up on after
/// the model's `timeout`, and the call tried again.
async fn retries_a_silent_whole_answer(wire: Wire) {
    let mock = MockModel::start(options(false), |call| match call.attempt {
        1 => Reply::Hang,
        _ => Reply::text("awake"),
    });
    let gw = gateway_with_timeout(&mock, wire, Budget::default(), Duration::from_secs(1));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let started = Instant::now();
    let done = gw
        .complete(&request("sleepy", Some(path.clone())))
        .await
        .unwrap();
    assert_eq!(done.text, "awake");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(mock.calls().len(), 2);
    mock.assert_clean();
    let lines = transcript(&path);
    let retry = lines.iter().find(|l| l["type"] == "retry").unwrap();
    assert_eq!(retry["reason"], "the model sent nothing for 1s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_retries_a_silent_whole_answer_anthropic() {
    retries_a_silent_whole_answer(Wire::Anthropic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_retries_a_silent_whole_answer_openai() {
    retries_a_silent_whole_answer(Wire::OpenAi).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_retries_a_5xx_and_a_cut_answer_anthropic() {
    retries_a_5xx_and_a_cut_answer(Wire::Anthropic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_retries_a_5xx_and_a_cut_answer_openai() {
    retries_a_5xx_and_a_cut_answer(Wire::OpenAi).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_fails_for_good_on_a_bad_key_and_an_unknown_model() {
    let mock = MockModel::start(options(false), |_| Reply::status(401, "invalid x-api-key"));
    let gw = gateway(&mock, Wire::Anthropic, Budget::default());
    let failed = gw.complete(&request("hi", None)).await.unwrap_err();
    assert!(matches!(&failed, GatewayError::Call { .. }), "{failed}");
    snapshot_settings().bind(|| insta::assert_snapshot!(failed.to_string(), @"call model `default`: HTTP 401: invalid x-api-key"));
    assert_eq!(mock.calls().len(), 1, "a 401 is not retried");
    let mut req = request("hi", None);
    req.model = "nope".into();
    let unknown = gw.complete(&req).await.unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "find model `nope` among the plan's models"
    );
}
