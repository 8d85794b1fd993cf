//! Plain option types shared by workflows and tasks: concurrency, rate limits, worker
//! affinity, stickiness. Each knows how to become its wire message.

use std::time::Duration;

use hatchet_proto::v1;

/// What the engine does with a run that would exceed a concurrency limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConcurrencyStrategy {
    /// Cancel the run already in progress for the group (the engine's default).
    #[default]
    CancelInProgress,
    /// Queue runs and serve groups fairly.
    GroupRoundRobin,
    /// Cancel the newly arriving run.
    CancelNewest,
}

/// A CEL concurrency limit, e.g. `input.user_id` with at most 1 run per value.
#[derive(Debug, Clone, PartialEq)]
pub struct Concurrency {
    pub(crate) expression: String,
    pub(crate) max_runs: Option<u32>,
    pub(crate) strategy: ConcurrencyStrategy,
}

impl Concurrency {
    /// Groups runs by the value of the CEL `expression`.
    pub fn new(expression: impl Into<String>) -> Self {
        Self {
            expression: expression.into(),
            max_runs: None,
            strategy: ConcurrencyStrategy::default(),
        }
    }

    /// At most `n` runs per group at once (engine default 1).
    pub fn max_runs(mut self, n: u32) -> Self {
        self.max_runs = Some(n);
        self
    }

    /// What to do when the limit is reached.
    pub fn strategy(mut self, s: ConcurrencyStrategy) -> Self {
        self.strategy = s;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.expression.trim().is_empty() {
            return Err("concurrency expression is empty".into());
        }
        if self.max_runs == Some(0) {
            return Err(format!(
                "concurrency {:?}: max_runs must be at least 1",
                self.expression
            ));
        }
        Ok(())
    }

    pub(crate) fn to_proto(&self) -> v1::Concurrency {
        let strategy = match self.strategy {
            ConcurrencyStrategy::CancelInProgress => v1::ConcurrencyLimitStrategy::CancelInProgress,
            ConcurrencyStrategy::GroupRoundRobin => v1::ConcurrencyLimitStrategy::GroupRoundRobin,
            ConcurrencyStrategy::CancelNewest => v1::ConcurrencyLimitStrategy::CancelNewest,
        };
        v1::Concurrency {
            expression: self.expression.clone(),
            max_runs: self.max_runs.map(|n| super::saturating_i32(n.into())),
            limit_strategy: Some(strategy as i32),
        }
    }
}

/// The window of a dynamic rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitWindow {
    /// The limit counts units per second.
    Second,
    /// The limit counts units per minute.
    Minute,
    /// The limit counts units per hour.
    Hour,
    /// The limit counts units per day.
    Day,
    /// The limit counts units per week.
    Week,
    /// The limit counts units per month.
    Month,
    /// The limit counts units per year.
    Year,
}

/// Units a task consumes from a rate limit: a static key (created with the REST API or
/// `PutRateLimit`) or CEL expressions evaluated per run.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    key: Option<String>,
    units: Option<u32>,
    key_expr: Option<String>,
    units_expr: Option<String>,
    limit_expr: Option<String>,
    window: Option<RateLimitWindow>,
}

impl RateLimit {
    /// Consumes `units` from the static limit `key`.
    pub fn fixed(key: impl Into<String>, units: u32) -> Self {
        Self {
            key: Some(key.into()),
            units: Some(units),
            key_expr: None,
            units_expr: None,
            limit_expr: None,
            window: None,
        }
    }

    /// A per-run limit: key, units and limit are CEL expressions over the input.
    pub fn dynamic(
        key_expr: impl Into<String>,
        units_expr: impl Into<String>,
        limit_expr: impl Into<String>,
        window: RateLimitWindow,
    ) -> Self {
        Self {
            key: None,
            units: None,
            key_expr: Some(key_expr.into()),
            units_expr: Some(units_expr.into()),
            limit_expr: Some(limit_expr.into()),
            window: Some(window),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        match (&self.key, &self.key_expr) {
            (Some(k), _) if k.trim().is_empty() => Err("rate limit key is empty".into()),
            (Some(_), _) if self.units == Some(0) => Err("rate limit units must be at least 1".into()),
            (None, Some(e)) if e.trim().is_empty() => Err("rate limit key expression is empty".into()),
            _ => Ok(()),
        }
    }

    pub(crate) fn to_proto(&self) -> v1::CreateTaskRateLimit {
        let window = self.window.map(|w| {
            (match w {
                RateLimitWindow::Second => v1::RateLimitDuration::Second,
                RateLimitWindow::Minute => v1::RateLimitDuration::Minute,
                RateLimitWindow::Hour => v1::RateLimitDuration::Hour,
                RateLimitWindow::Day => v1::RateLimitDuration::Day,
                RateLimitWindow::Week => v1::RateLimitDuration::Week,
                RateLimitWindow::Month => v1::RateLimitDuration::Month,
                RateLimitWindow::Year => v1::RateLimitDuration::Year,
            }) as i32
        });
        v1::CreateTaskRateLimit {
            key: self.key.clone().or_else(|| self.key_expr.clone()).unwrap_or_default(),
            units: self.units.map(|u| super::saturating_i32(u.into())),
            key_expr: self.key_expr.clone(),
            units_expr: self.units_expr.clone(),
            limit_values_expr: self.limit_expr.clone(),
            duration: window,
        }
    }
}

/// A worker label value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LabelValue {
    /// A string label; only [`Comparator::Equal`] and [`Comparator::NotEqual`] apply to it.
    Str(String),
    /// An integer label, which every [`Comparator`] can compare.
    Int(i32),
}

impl From<&str> for LabelValue {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}
impl From<String> for LabelValue {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}
impl From<i32> for LabelValue {
    fn from(i: i32) -> Self {
        Self::Int(i)
    }
}

/// How a desired label compares with the worker's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Comparator {
    /// The worker's label equals the desired value (the default).
    #[default]
    Equal,
    /// The worker's label differs from the desired value.
    NotEqual,
    /// The worker's integer label is greater than the desired value.
    GreaterThan,
    /// The worker's integer label is greater than or equal to the desired value.
    GreaterThanOrEqual,
    /// The worker's integer label is less than the desired value.
    LessThan,
    /// The worker's integer label is less than or equal to the desired value.
    LessThanOrEqual,
}

/// Worker affinity: which workers a task prefers (weighted) or requires.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredLabel {
    pub(crate) value: LabelValue,
    pub(crate) required: bool,
    pub(crate) comparator: Comparator,
    pub(crate) weight: Option<i32>,
}

impl DesiredLabel {
    /// Only workers whose label matches may run the task.
    pub fn required(value: impl Into<LabelValue>) -> Self {
        Self {
            value: value.into(),
            required: true,
            comparator: Comparator::Equal,
            weight: None,
        }
    }

    /// Matching workers are preferred with `weight` (engine default 100).
    pub fn preferred(value: impl Into<LabelValue>, weight: i32) -> Self {
        Self {
            value: value.into(),
            required: false,
            comparator: Comparator::Equal,
            weight: Some(weight),
        }
    }

    /// Compares with something other than equality.
    pub fn comparator(mut self, c: Comparator) -> Self {
        self.comparator = c;
        self
    }

    pub(crate) fn to_proto(&self) -> v1::DesiredWorkerLabels {
        let (str_value, int_value) = match &self.value {
            LabelValue::Str(s) => (Some(s.clone()), None),
            LabelValue::Int(i) => (None, Some(*i)),
        };
        let comparator = match self.comparator {
            Comparator::Equal => v1::WorkerLabelComparator::Equal,
            Comparator::NotEqual => v1::WorkerLabelComparator::NotEqual,
            Comparator::GreaterThan => v1::WorkerLabelComparator::GreaterThan,
            Comparator::GreaterThanOrEqual => v1::WorkerLabelComparator::GreaterThanOrEqual,
            Comparator::LessThan => v1::WorkerLabelComparator::LessThan,
            Comparator::LessThanOrEqual => v1::WorkerLabelComparator::LessThanOrEqual,
        };
        v1::DesiredWorkerLabels {
            str_value,
            int_value,
            required: Some(self.required),
            comparator: Some(comparator as i32),
            weight: self.weight,
        }
    }
}

/// Whether runs of a workflow stay on the worker that started them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sticky {
    /// Prefer the same worker.
    Soft,
    /// Require the same worker.
    Hard,
}

/// Default execution timeout of a task, as in the official SDKs.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Options every task of a workflow gets unless it sets its own (the official SDKs'
/// `task_defaults`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TaskDefaults {
    pub(crate) retries: Option<u32>,
    pub(crate) backoff: Option<(f32, Duration)>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) schedule_timeout: Option<Duration>,
}

impl TaskDefaults {
    /// Retries of a failed run.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = Some(n);
        self
    }

    /// Exponential backoff between retries: wait grows by `factor`, capped at `max`.
    pub fn backoff(mut self, factor: f32, max: Duration) -> Self {
        self.backoff = Some((factor, max));
        self
    }

    /// Execution timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// How long a run may wait in the queue for a worker.
    pub fn schedule_timeout(mut self, d: Duration) -> Self {
        self.schedule_timeout = Some(d);
        self
    }

    /// These options, with what they leave unset taken from `fallback`.
    pub(crate) fn or(self, fallback: Self) -> Self {
        Self {
            retries: self.retries.or(fallback.retries),
            backoff: self.backoff.or(fallback.backoff),
            timeout: self.timeout.or(fallback.timeout),
            schedule_timeout: self.schedule_timeout.or(fallback.schedule_timeout),
        }
    }
}

/// Deduplication of runs (the official SDKs' `idempotency`): a run whose CEL key (a string,
/// e.g. `'charge:' + string(input.order_id)`) is held by an earlier run is not started; the
/// trigger fails with [`Error::Duplicate`](crate::Error::Duplicate) naming that run. Engine
/// facts: keys are tenant-wide (prefix them with the workflow), and a trigger whose key does
/// not evaluate (a missing field) is dropped by the engine after it answered with a run id.
#[derive(Debug, Clone, PartialEq)]
pub struct Idempotency {
    pub(crate) expression: String,
    pub(crate) ttl: Duration,
    pub(crate) while_running: bool,
}

impl Idempotency {
    /// The key is held for `ttl` after the run that took it was triggered.
    pub fn ttl(key_expression: impl Into<String>, ttl: Duration) -> Self {
        Self {
            expression: key_expression.into(),
            ttl,
            while_running: false,
        }
    }

    /// The key is held until the run that took it finishes, and at most `fallback_ttl`.
    pub fn while_running(key_expression: impl Into<String>, fallback_ttl: Duration) -> Self {
        Self {
            expression: key_expression.into(),
            ttl: fallback_ttl,
            while_running: true,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.expression.trim().is_empty() {
            return Err("idempotency key expression is empty".into());
        }
        if self.ttl.as_millis() == 0 {
            return Err(format!("idempotency TTL must be at least 1ms, got {:?}", self.ttl));
        }
        Ok(())
    }

    pub(crate) fn to_proto(&self) -> v1::IdempotencyConfig {
        let method = if self.while_running {
            v1::IdempotencyMethod::Status
        } else {
            v1::IdempotencyMethod::Ttl
        };
        v1::IdempotencyConfig {
            expression: self.expression.clone(),
            ttl_ms: i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX),
            method: Some(method as i32),
        }
    }
}

/// An event filter of a workflow (the official SDKs' `default_filters`): once a workflow has
/// any, an event starts it only when pushed with a scope that has filters, once per filter of
/// that scope whose CEL expression holds. The expression sees `input` (the event payload),
/// `payload` (the filter's), `additional_metadata` and `event_key`; the run sees the filter's
/// payload in [`Context::filter_payload`](crate::Context::filter_payload).
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter {
    pub(crate) scope: String,
    pub(crate) expression: String,
    pub(crate) payload: serde_json::Value,
}

impl EventFilter {
    /// A filter for events pushed with `scope`, passing those that make `expression` true.
    pub fn new(scope: impl Into<String>, expression: impl Into<String>) -> Self {
        Self {
            scope: scope.into(),
            expression: expression.into(),
            payload: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// A JSON object handed to the runs the filter starts.
    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.scope.trim().is_empty() {
            return Err("event filter scope is empty".into());
        }
        if self.expression.trim().is_empty() {
            return Err(format!("event filter for scope {:?} has no expression", self.scope));
        }
        if !self.payload.is_object() {
            return Err(format!(
                "event filter for scope {:?}: payload must be a JSON object",
                self.scope
            ));
        }
        Ok(())
    }

    pub(crate) fn to_proto(&self) -> v1::DefaultFilter {
        v1::DefaultFilter {
            expression: self.expression.clone(),
            scope: self.scope.clone(),
            payload: Some(self.payload.to_string().into_bytes()),
        }
    }
}
