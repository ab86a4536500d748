//! Agent tasks in a plan: the `[models.NAME]` tables, budgets, and the
//! checks that tie a `prompt` task to a model it can use.

#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::error::{PlanError, PlanErrorKind, Source, did_you_mean};
use super::schema::{BudgetFields, ModelFields};
pub use crate::gateway::config::{AgentTask, Budget, ModelConfig};

impl From<BudgetFields> for Budget {
    fn from(b: BudgetFields) -> Self {
        Self {
            tokens: b.tokens,
            usd: b.usd,
        }
    }
}

pub const DEFAULT_MAX_TURNS: u32 = 50;
pub const DEFAULT_REPAIR_ROUNDS: u32 = 2;

/// Checks every `[models.NAME]` table: the valid ones, by name; an error
/// for each of the others.
pub(super) fn resolve_models(
    source: &Source,
    tables: &BTreeMap<String, Spanned<ModelFields>>,
    errors: &mut Vec<PlanError>,
) -> BTreeMap<String, ModelConfig> {
    let mut models = BTreeMap::new();
    for (name, table) in tables {
        match model_config(source, name, table) {
            Ok(model) => {
                models.insert(name.clone(), model);
            }
            Err(e) => errors.push(e),
        }
    }
    models
}

/// One `[models.NAME]` table, checked.
fn model_config(
    source: &Source,
    name: &str,
    table: &Spanned<ModelFields>,
) -> Result<ModelConfig, PlanError> {
    {
        let span = table.span();
        let fields = table.get_ref();
        let bad = |message: String, help: &str| {
            source
                .error(
                    PlanErrorKind::BadValue,
                    message,
                    Some(span.clone()),
                    "in this model",
                )
                .with_help(help.to_string())
        };
        if fields.model.trim().is_empty() {
            return Err(bad(
                format!("model `{name}` has an empty `model`"),
                "name the provider's model, e.g. model = \"claude-sonnet-4-5\"",
            ));
        }
        // Each provider's own, from its module: adding one touches no
        // code here.
        let defaults = crate::gateway::provider::for_kind(fields.provider).defaults();
        let base_url = fields
            .base_url
            .clone()
            .unwrap_or_else(|| defaults.base_url.into())
            .trim_end_matches('/')
            .to_string();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(bad(
                format!("model `{name}` has an invalid base_url `{base_url}`"),
                "use an http:// or https:// URL, e.g. base_url = \"http://localhost:11434/v1\"",
            ));
        }
        let api_key_env: Option<String> = match &fields.api_key_env {
            Some(v) if v.is_empty() => None,
            Some(v) => Some(v.clone()),
            None => Some(defaults.api_key_env.into()),
        };
        if api_key_env.is_some() && base_url.starts_with("http://") && !is_loopback(&base_url) {
            return Err(bad(
                format!("model `{name}` would send its API key unencrypted to {base_url}"),
                "use https://, or set api_key_env = \"\" for a local endpoint without a key",
            ));
        }
        let timeout = match &fields.timeout {
            None => Duration::from_secs(120),
            Some(t) => humantime::parse_duration(t.get_ref())
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    source
                        .error(
                            PlanErrorKind::BadValue,
                            format!("invalid timeout `{}` for model `{name}`", t.get_ref()),
                            Some(t.span()),
                            "not a duration",
                        )
                        .with_help("write durations like \"60s\" or \"2m\"")
                })?,
        };
        // A negative or NaN price would make spending go down, or never
        // reach a budget.
        let sane = |p: f64| p.is_finite() && p >= 0.0;
        if let Some(price) = fields.price
            && !(sane(price.input)
                && sane(price.output)
                && price.cache_read.is_none_or(sane)
                && price.cache_write.is_none_or(sane))
        {
            return Err(bad(
                format!("model `{name}` has a negative or non-finite price"),
                "prices are USD per million tokens, e.g. price = { input = 3.0, output = 15.0, cache_read = 0.3 }",
            ));
        }
        if fields.concurrency == Some(0) || fields.max_tokens == Some(0) {
            return Err(bad(
                format!("model `{name}` sets `concurrency` or `max_tokens` to 0"),
                "both must be at least 1",
            ));
        }
        Ok(ModelConfig {
            name: name.to_string(),
            provider: fields.provider,
            model: fields.model.clone(),
            base_url,
            api_key_env,
            max_tokens: fields.max_tokens.unwrap_or(8192),
            concurrency: fields.concurrency.unwrap_or(16),
            requests_per_minute: fields.requests_per_minute.filter(|&r| r > 0),
            tokens_per_minute: fields.tokens_per_minute.filter(|&t| t > 0),
            retries: fields.retries.unwrap_or(4),
            timeout,
            price: fields
                .price
                .or_else(|| crate::gateway::prices::lookup(&fields.model))
                .map(|p| crate::gateway::prices::for_provider(p, fields.provider)),
            prompt_cache: fields.prompt_cache.unwrap_or(true),
            tool_choice: fields.tool_choice.unwrap_or_default(),
            span,
        })
    }
}

/// True if `url` (http://...) names this machine.
fn is_loopback(url: &str) -> bool {
    let rest = url.trim_start_matches("http://");
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks a budget written at `span`; `model` is the model whose price a
/// USD limit needs (`None` for the run's budget: checked per model).
pub(super) fn check_budget(
    source: &Source,
    budget: Budget,
    span: Range<usize>,
    whose: &str,
    unpriced: Option<&ModelConfig>,
) -> Result<Budget, PlanError> {
    if budget.tokens == Some(0) || budget.usd.is_some_and(|u| u.is_nan() || u <= 0.0) {
        return Err(source
            .error(
                PlanErrorKind::BadValue,
                format!("the budget of {whose} must be more than zero"),
                Some(span),
                "here",
            )
            .with_help("e.g. budget = { tokens = 400000, usd = 2.0 }; leave it out for no limit"));
    }
    if budget.usd.is_some()
        && let Some(model) = unpriced
    {
        return Err(source
            .error(
                PlanErrorKind::BadValue,
                format!(
                    "{whose} has a USD budget, but swarm does not know the price of model `{}` ({})",
                    model.name, model.model
                ),
                Some(model.span.clone()),
                "no price for this model",
            )
            .with_help(
                "add its price in USD per million tokens, e.g. price = { input = 3.0, output = 15.0 }, or use a token budget",
            ));
    }
    Ok(budget)
}

/// The model an agent task names, or a positioned error.
pub(super) fn pick_model<'a>(
    source: &Source,
    models: &'a BTreeMap<String, ModelConfig>,
    id: &str,
    name: &str,
    span: Range<usize>,
) -> Result<&'a ModelConfig, PlanError> {
    if let Some(model) = models.get(name) {
        return Ok(model);
    }
    let help = if models.is_empty() {
        "agent tasks need a model; add one, e.g.\n\n[models.default]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-4-5\"\napi_key_env = \"ANTHROPIC_API_KEY\"".to_string()
    } else {
        match did_you_mean(name, models.keys().map(String::as_str)) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!(
                "the plan's models are: {}",
                models
                    .keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    };
    Err(source
        .error(
            PlanErrorKind::BadValue,
            format!("task `{id}` uses model `{name}`, which the plan does not define"),
            Some(span),
            "no such [models] table",
        )
        .with_help(help))
}
