//! Declaring work: workflows of typed tasks, their triggers and scheduling options, and
//! their translation into the engine's `PutWorkflow` request.

mod conditions;
mod options;
mod task;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hatchet_proto::v1;

pub use conditions::{AnyOf, Condition};
pub(crate) use conditions::{durable_conditions, needs_lookback};
pub use options::{
    Comparator, Concurrency, ConcurrencyStrategy, DEFAULT_TIMEOUT, DesiredLabel, EventFilter, Idempotency, LabelValue,
    RateLimit, RateLimitWindow, Sticky, TaskDefaults,
};
pub(crate) use task::Handler;
pub use task::{Task, TaskError};

use crate::Error;
use crate::names::{go_duration, validate_cron, validate_label_key, validate_name};
use hatchet_contract::namespace::apply as apply_namespace;

/// A workflow: one task, or a DAG of tasks, with triggers and limits.
#[derive(Debug, Clone)]
pub struct Workflow {
    pub(crate) name: String,
    description: Option<String>,
    version: Option<String>,
    events: Vec<String>,
    crons: Vec<String>,
    cron_input: Option<serde_json::Value>,
    pub(crate) tasks: Vec<Task>,
    pub(crate) on_failure: Option<Task>,
    sticky: Option<Sticky>,
    default_priority: Option<u8>,
    concurrency: Vec<Concurrency>,
    defaults: TaskDefaults,
    idempotency: Option<Idempotency>,
    filters: Vec<EventFilter>,
}

impl Workflow {
    /// A workflow named `name` (the namespace prefix is added at registration).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: None,
            version: None,
            events: Vec::new(),
            crons: Vec::new(),
            cron_input: None,
            tasks: Vec::new(),
            on_failure: None,
            sticky: None,
            default_priority: None,
            concurrency: Vec::new(),
            defaults: TaskDefaults::default(),
            idempotency: None,
            filters: Vec::new(),
        }
    }

    /// The workflow's name as declared (without namespace).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A human description.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }

    /// A version label for the definition.
    pub fn version(mut self, v: impl Into<String>) -> Self {
        self.version = Some(v.into());
        self
    }

    /// Runs the workflow whenever an event with this key is pushed.
    pub fn on_event(mut self, key: impl Into<String>) -> Self {
        self.events.push(key.into());
        self
    }

    /// Runs the workflow on a cron schedule (five fields, UTC).
    pub fn on_cron(mut self, expr: impl Into<String>) -> Self {
        self.crons.push(expr.into());
        self
    }

    /// The input cron-triggered runs receive.
    pub fn cron_input(mut self, input: serde_json::Value) -> Self {
        self.cron_input = Some(input);
        self
    }

    /// Adds a task.
    pub fn task(mut self, task: Task) -> Self {
        self.tasks.push(task);
        self
    }

    /// A task that runs when any task of a run fails; it sees the failures in
    /// [`Context::task_errors`](crate::Context::task_errors).
    pub fn on_failure(mut self, task: Task) -> Self {
        self.on_failure = Some(task);
        self
    }

    /// Keeps the tasks of one run on one worker.
    pub fn sticky(mut self, s: Sticky) -> Self {
        self.sticky = Some(s);
        self
    }

    /// Default priority of runs, 1 (lowest) to 3.
    pub fn default_priority(mut self, p: u8) -> Self {
        self.default_priority = Some(p);
        self
    }

    /// A workflow-level CEL concurrency limit.
    pub fn concurrency(mut self, c: Concurrency) -> Self {
        self.concurrency.push(c);
        self
    }

    /// Options for every task that does not set its own.
    pub fn task_defaults(mut self, defaults: TaskDefaults) -> Self {
        self.defaults = defaults;
        self
    }

    /// Deduplicates runs by a key computed from their input.
    pub fn idempotency(mut self, i: Idempotency) -> Self {
        self.idempotency = Some(i);
        self
    }

    /// Adds an event filter: from then on, only scoped events its scope's filters pass start
    /// the workflow.
    pub fn event_filter(mut self, f: EventFilter) -> Self {
        self.filters.push(f);
        self
    }

    /// `t`'s execution timeout: its own, the workflow's default, or 60 s.
    pub(crate) fn timeout_of(&self, t: &Task) -> Duration {
        self.options_of(t).timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// `t`'s retries, backoff and timeouts: its own, else the workflow's defaults.
    fn options_of(&self, t: &Task) -> TaskDefaults {
        t.own.or(self.defaults)
    }

    /// All tasks including the on-failure task.
    pub(crate) fn all_tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter().chain(self.on_failure.as_ref())
    }

    /// The action id the engine assigns runs of `task` by: `<workflow>:<task>`, lowercase.
    pub(crate) fn action_id(&self, namespace: &str, task: &str) -> String {
        format!(
            "{}:{}",
            apply_namespace(namespace, &self.name).to_lowercase(),
            task.to_lowercase()
        )
    }

    /// Checks everything the engine would refuse, without any network call.
    pub fn validate(&self) -> Result<(), Error> {
        let wf = |msg: String| Error::Definition(format!("workflow {:?}: {msg}", self.name));
        validate_name("workflow", &self.name).map_err(wf)?;
        if self.tasks.is_empty() {
            return Err(wf("has no tasks".into()));
        }
        let mut seen = BTreeSet::new();
        for t in self.all_tasks() {
            let tk = |msg: String| wf(format!("task {:?}: {msg}", t.name));
            validate_name("task", &t.name).map_err(tk)?;
            if !seen.insert(t.name.to_lowercase()) {
                return Err(tk("is declared twice".into()));
            }
            let options = self.options_of(t);
            go_duration("timeout", self.timeout_of(t)).map_err(tk)?;
            if let Some(d) = options.schedule_timeout {
                go_duration("schedule timeout", d).map_err(tk)?;
            }
            if let Some((factor, max)) = options.backoff {
                if !(1.0..=1000.0).contains(&factor) {
                    return Err(tk(format!("backoff factor must be between 1 and 1000, got {factor}")));
                }
                if !(1..=86_400).contains(&max.as_secs()) {
                    return Err(tk(format!("backoff max must be between 1s and 24h, got {max:?}")));
                }
            }
            for r in &t.rate_limits {
                r.validate().map_err(tk)?;
            }
            for c in &t.concurrency {
                c.validate().map_err(tk)?;
            }
            for k in t.desired_labels.keys() {
                validate_label_key(k).map_err(tk)?;
            }
            t.conditions.validate(&t.parents).map_err(tk)?;
            if t.slot_cost == 0 {
                return Err(tk("slot cost must be at least 1".into()));
            }
            if t.eviction.is_some() && !t.durable {
                return Err(tk("an eviction policy applies to durable tasks only".into()));
            }
        }
        for t in &self.tasks {
            for p in &t.parents {
                if p == &t.name || !self.tasks.iter().any(|o| &o.name == p) {
                    return Err(wf(format!(
                        "task {:?}: parent {p:?} is not a task of this workflow",
                        t.name
                    )));
                }
            }
        }
        if let Some(t) = &self.on_failure
            && !t.parents.is_empty()
        {
            return Err(wf("the on-failure task cannot have parents".into()));
        }
        if let Some(t) = &self.on_failure
            && !t.conditions.is_empty()
        {
            return Err(wf("the on-failure task cannot have conditions".into()));
        }
        self.check_acyclic().map_err(wf)?;
        for c in &self.crons {
            validate_cron(c).map_err(wf)?;
        }
        for e in &self.events {
            if e.trim().is_empty() {
                return Err(wf("event trigger key is empty".into()));
            }
        }
        for c in &self.concurrency {
            c.validate().map_err(wf)?;
        }
        if let Some(i) = &self.idempotency {
            i.validate().map_err(wf)?;
        }
        for f in &self.filters {
            f.validate().map_err(wf)?;
        }
        if let Some(p) = self.default_priority
            && !(1..=3).contains(&p)
        {
            return Err(wf(format!("default priority must be 1, 2 or 3, got {p}")));
        }
        Ok(())
    }

    fn check_acyclic(&self) -> Result<(), String> {
        let parents: BTreeMap<&str, &[String]> = self
            .tasks
            .iter()
            .map(|t| (t.name.as_str(), t.parents.as_slice()))
            .collect();
        let mut done = BTreeSet::new();
        let mut remaining: Vec<&str> = parents.keys().copied().collect();
        while !remaining.is_empty() {
            let before = remaining.len();
            remaining.retain(|t| {
                let ready = parents[t].iter().all(|p| done.contains(p.as_str()));
                if ready {
                    done.insert(*t);
                }
                !ready
            });
            if remaining.len() == before {
                return Err(format!("tasks {remaining:?} depend on each other in a cycle"));
            }
        }
        Ok(())
    }

    /// The `PutWorkflow` request for this workflow under `namespace`.
    pub(crate) fn to_proto(&self, namespace: &str) -> Result<v1::CreateWorkflowVersionRequest, Error> {
        self.validate()?;
        let tasks = self
            .tasks
            .iter()
            .map(|t| self.task_proto(namespace, t))
            .collect::<Result<_, _>>()?;
        let on_failure_task = self
            .on_failure
            .as_ref()
            .map(|t| self.task_proto(namespace, t))
            .transpose()?;
        let cron_input = self
            .cron_input
            .as_ref()
            .map(|v| serde_json::to_string(v).map_err(|e| Error::Definition(e.to_string())))
            .transpose()?;
        Ok(v1::CreateWorkflowVersionRequest {
            name: apply_namespace(namespace, &self.name),
            description: self.description.clone().unwrap_or_default(),
            version: self.version.clone().unwrap_or_default(),
            event_triggers: self.events.iter().map(|e| apply_namespace(namespace, e)).collect(),
            cron_triggers: self.crons.clone(),
            tasks,
            concurrency: None,
            cron_input,
            on_failure_task,
            sticky: self.sticky.map(|s| match s {
                Sticky::Soft => v1::StickyStrategy::Soft as i32,
                Sticky::Hard => v1::StickyStrategy::Hard as i32,
            }),
            default_priority: self.default_priority.map(i32::from),
            concurrency_arr: self.concurrency.iter().map(Concurrency::to_proto).collect(),
            default_filters: self.filters.iter().map(EventFilter::to_proto).collect(),
            input_json_schema: None,
            idempotency: self.idempotency.as_ref().map(Idempotency::to_proto),
        })
    }

    fn task_proto(&self, namespace: &str, t: &Task) -> Result<v1::CreateTaskOpts, Error> {
        let d = |what: &str, v: Duration| go_duration(what, v).map_err(Error::Definition);
        let options = self.options_of(t);
        Ok(v1::CreateTaskOpts {
            readable_id: t.name.clone(),
            action: self.action_id(namespace, &t.name),
            timeout: d("timeout", self.timeout_of(t))?,
            inputs: "{}".into(),
            parents: t.parents.clone(),
            retries: saturating_i32(options.retries.unwrap_or(0).into()),
            rate_limits: t.rate_limits.iter().map(RateLimit::to_proto).collect(),
            worker_labels: t
                .desired_labels
                .iter()
                .map(|(k, v)| (k.clone(), v.to_proto()))
                .collect(),
            backoff_factor: options.backoff.map(|(factor, _)| factor),
            backoff_max_seconds: options.backoff.map(|(_, max)| saturating_i32(max.as_secs())),
            concurrency: t.concurrency.iter().map(Concurrency::to_proto).collect(),
            conditions: t.conditions.to_proto(namespace),
            schedule_timeout: options.schedule_timeout.map(|s| d("schedule timeout", s)).transpose()?,
            is_durable: t.durable,
            slot_requests: [(slot_type(t.durable).to_owned(), saturating_i32(t.slot_cost.into()))].into(),
            batch: None,
        })
    }
}

/// The engine's slot type a task runs in: durable tasks have their own slots, so runs that
/// only wait do not take the slots of those that work.
pub(crate) fn slot_type(durable: bool) -> &'static str {
    if durable { "durable" } else { "default" }
}

/// The engine's counters are int32: a larger count means "as many as the engine allows", never
/// a wrapped negative number.
pub(crate) fn saturating_i32(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests;
