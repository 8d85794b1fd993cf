//! Conditions on a task (`wait_for`, `skip_if`, `cancel_if`): what the engine waits for before
//! it queues a task, or what makes it skip or cancel the task instead. The engine evaluates
//! them; this module only declares them and turns them into `CreateTaskOpts.conditions`.
//!
//! Within one group any condition suffices (OR); every group of one kind must hold (AND).
//! Engine semantics (v0.104.7): skip wins over cancel, cancel over queue; a skipped task's
//! output is `{"skipped": true}` and its children run unless all their parents were skipped.

use std::collections::BTreeSet;
use std::time::Duration;

use hatchet_proto::v1;

use crate::names::go_duration;
use hatchet_contract::namespace::apply as apply_namespace;

/// One thing the engine can wait for.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    kind: Kind,
    data_key: Option<String>,
    /// Events only: the scope they must be pushed with.
    scope: Option<String>,
    /// Events only, durable waits only: also events pushed this long before the wait began.
    lookback: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Sleep(Duration),
    Event { key: String, expression: Option<String> },
    Parent { task: String, expression: String },
}

impl Condition {
    /// Holds once `duration` has passed since the task's parents completed (or the run
    /// started, for a task without parents).
    pub fn sleep(duration: Duration) -> Self {
        Self {
            kind: Kind::Sleep(duration),
            data_key: None,
            scope: None,
            lookback: None,
        }
    }

    /// Holds when an event with `key` is pushed (the namespace is applied as to triggers).
    /// Events pushed before the engine created the task's wait are not seen.
    pub fn event(key: impl Into<String>) -> Self {
        Self {
            kind: Kind::Event {
                key: key.into(),
                expression: None,
            },
            data_key: None,
            scope: None,
            lookback: None,
        }
    }

    /// Like [`Condition::event`], for events whose payload makes the CEL `expression` true
    /// (e.g. `input.order_id == 42`).
    pub fn event_matching(key: impl Into<String>, expression: impl Into<String>) -> Self {
        Self {
            kind: Kind::Event {
                key: key.into(),
                expression: Some(expression.into()),
            },
            data_key: None,
            scope: None,
            lookback: None,
        }
    }

    /// Holds when parent `task` completed with an output making the CEL `expression` true
    /// (e.g. `output.amount > 100`); `task` must be one of the task's parents.
    pub fn parent(task: impl Into<String>, expression: impl Into<String>) -> Self {
        Self {
            kind: Kind::Parent {
                task: task.into(),
                expression: expression.into(),
            },
            data_key: None,
            scope: None,
            lookback: None,
        }
    }

    /// The key the engine stores the condition's data under; unique within a task. Defaults:
    /// `sleep:<duration>`, the event key, `<parent>:<expression>`.
    pub fn data_key(mut self, key: impl Into<String>) -> Self {
        self.data_key = Some(key.into());
        self
    }

    /// Only events pushed with `scope` count (a durable wait's condition: the engine ignores
    /// scopes on a task's conditions).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// In a durable wait, events pushed up to `window` before the wait began count too, so an
    /// event pushed just before cannot be missed (the official SDKs' `lookback_window`; it
    /// needs a [`Condition::scope`], as there). The window is counted from the run's memoized
    /// time, so a replay looks at the same events.
    pub fn lookback(mut self, window: Duration) -> Self {
        self.lookback = Some(window);
        self
    }

    fn readable_data_key(&self) -> String {
        if let Some(k) = &self.data_key {
            return k.clone();
        }
        match &self.kind {
            Kind::Sleep(d) => format!("sleep:{}", go_duration("sleep", *d).unwrap_or_default()),
            Kind::Event { key, .. } => key.clone(),
            Kind::Parent { task, expression } => format!("{task}:{expression}"),
        }
    }
}

impl Condition {
    /// In a test context, the data this condition fires with: a sleep fires by itself, an
    /// event when the test stubbed its key.
    pub(crate) fn stubbed(
        &self,
        events: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Option<(String, serde_json::Value)> {
        let data = match &self.kind {
            Kind::Sleep(d) => serde_json::json!({ "sleep_duration": go_duration("sleep", *d).unwrap_or_default() }),
            Kind::Event { key, .. } => events.get(key)?.clone(),
            Kind::Parent { .. } => return None,
        };
        Some((self.readable_data_key(), data))
    }
}

/// Conditions of which any one suffices: a single [`Condition`] converts into a group of one.
#[derive(Debug, Clone, PartialEq)]
pub struct AnyOf(Vec<Condition>);

impl AnyOf {
    /// A group that holds as soon as one of `conditions` holds.
    pub fn new(conditions: impl IntoIterator<Item = Condition>) -> Self {
        Self(conditions.into_iter().collect())
    }
}

impl AnyOf {
    pub(crate) fn conditions(&self) -> &[Condition] {
        &self.0
    }
}

/// Whether a durable wait on `groups` looks back at earlier events (it then needs the run's
/// memoized time).
pub(crate) fn needs_lookback(groups: &[AnyOf]) -> bool {
    groups.iter().flat_map(|g| &g.0).any(|c| c.lookback.is_some())
}

impl From<Condition> for AnyOf {
    fn from(c: Condition) -> Self {
        Self(vec![c])
    }
}

/// What the engine does when a task's groups of one kind all hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Queue,
    Skip,
    Cancel,
}

impl Effect {
    fn to_proto(self) -> v1::Action {
        match self {
            Self::Queue => v1::Action::Queue,
            Self::Skip => v1::Action::Skip,
            Self::Cancel => v1::Action::Cancel,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Queue => "wait_for",
            Self::Skip => "skip_if",
            Self::Cancel => "cancel_if",
        }
    }
}

/// A task's declared conditions, in the order declared.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TaskConditions {
    groups: Vec<(Effect, AnyOf)>,
}

impl TaskConditions {
    pub(crate) fn wait_for(&mut self, group: AnyOf) {
        self.groups.push((Effect::Queue, group));
    }

    pub(crate) fn skip_if(&mut self, group: AnyOf) {
        self.groups.push((Effect::Skip, group));
    }

    pub(crate) fn cancel_if(&mut self, group: AnyOf) {
        self.groups.push((Effect::Cancel, group));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Checks what the engine would refuse or silently mishandle: an empty group, a parent
    /// condition on a task that is not a parent, a sleep the engine cannot parse, data keys
    /// used twice.
    pub(crate) fn validate(&self, parents: &[String]) -> Result<(), String> {
        self.validate_for(parents, false)
    }

    /// As [`TaskConditions::validate`]; a durable wait's conditions may also have a scope and
    /// a lookback.
    fn validate_for(&self, parents: &[String], durable: bool) -> Result<(), String> {
        let mut keys = BTreeSet::new();
        for (effect, AnyOf(conditions)) in &self.groups {
            if conditions.is_empty() {
                return Err(format!("{} has an empty group of conditions", effect.name()));
            }
            for c in conditions {
                let is_event = matches!(c.kind, Kind::Event { .. });
                if (c.scope.is_some() || c.lookback.is_some()) && !(durable && is_event) {
                    return Err(format!(
                        "{}: a scope or lookback applies to events of a durable wait (the engine ignores them on a task's conditions)",
                        effect.name()
                    ));
                }
                if c.lookback.is_some() && c.scope.is_none() {
                    return Err(format!("{}: an event lookback needs a scope", effect.name()));
                }
                match &c.kind {
                    Kind::Sleep(d) => {
                        go_duration("sleep condition", *d)?;
                    }
                    Kind::Event { key, .. } => {
                        if key.trim().is_empty() {
                            return Err(format!("{}: event condition key is empty", effect.name()));
                        }
                    }
                    Kind::Parent { task, expression } => {
                        if !parents.contains(task) {
                            return Err(format!(
                                "{}: parent condition on {task:?}, which is not a parent of this task",
                                effect.name()
                            ));
                        }
                        if expression.trim().is_empty() {
                            return Err(format!(
                                "{}: parent condition on {task:?} has no expression",
                                effect.name()
                            ));
                        }
                    }
                }
                let key = c.readable_data_key();
                if !keys.insert(key.clone()) {
                    return Err(format!(
                        "{}: two conditions store their data under {key:?}; give one a data_key",
                        effect.name()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The wire form. Each group gets an or-group id (a UUID, as the engine requires) derived
    /// from its position, so the same definition always makes the same request.
    pub(crate) fn to_proto(&self, namespace: &str) -> Option<v1::TaskConditions> {
        self.to_proto_at(namespace, None)
    }

    /// The wire form, with event lookbacks counted back from `now`.
    fn to_proto_at(&self, namespace: &str, now: Option<std::time::SystemTime>) -> Option<v1::TaskConditions> {
        if self.groups.is_empty() {
            return None;
        }
        let mut out = v1::TaskConditions::default();
        for (index, (effect, AnyOf(conditions))) in self.groups.iter().enumerate() {
            let or_group_id = format!("00000000-0000-4000-8000-{index:012x}");
            for c in conditions {
                let base = |expression: Option<&String>| v1::BaseMatchCondition {
                    readable_data_key: c.readable_data_key(),
                    action: effect.to_proto() as i32,
                    or_group_id: or_group_id.clone(),
                    expression: expression.cloned().unwrap_or_default(),
                };
                match &c.kind {
                    Kind::Sleep(d) => out.sleep_conditions.push(v1::SleepMatchCondition {
                        base: Some(base(None)),
                        sleep_for: go_duration("sleep condition", *d).unwrap_or_default(),
                    }),
                    Kind::Event { key, expression } => out.user_event_conditions.push(v1::UserEventMatchCondition {
                        base: Some(base(expression.as_ref())),
                        user_event_key: apply_namespace(namespace, key),
                        event_scope: c.scope.clone(),
                        consider_events_since: c
                            .lookback
                            .zip(now)
                            .map(|(window, now)| prost_types::Timestamp::from(now - window)),
                    }),
                    Kind::Parent { task, expression } => {
                        out.parent_override_conditions.push(v1::ParentOverrideMatchCondition {
                            base: Some(base(Some(expression))),
                            parent_readable_id: task.clone(),
                        });
                    }
                }
            }
        }
        Some(out)
    }
}

/// A durable task's wait (`DurableContext::wait_for`): every group must hold, any condition
/// of a group suffices; the engine creates the wait (action CREATE) in the task's event log.
/// Only sleeps and events apply (a running task has no parent output left to wait for). The
/// or-group ids are derived from position: the engine leaves them out of the log entry's
/// identity, but a replay then sends the very same request.
pub(crate) fn durable_conditions(
    groups: &[AnyOf],
    namespace: &str,
    now: Option<std::time::SystemTime>,
) -> Result<v1::DurableEventListenerConditions, String> {
    let mut declared = TaskConditions::default();
    for g in groups {
        declared.wait_for(g.clone());
    }
    if declared.is_empty() {
        return Err("wait_for needs at least one condition".into());
    }
    declared.validate_for(&[], true)?;
    let task = declared.to_proto_at(namespace, now).unwrap_or_default();
    let create = |base: Option<v1::BaseMatchCondition>| {
        base.map(|b| v1::BaseMatchCondition {
            action: v1::Action::Create as i32,
            ..b
        })
    };
    Ok(v1::DurableEventListenerConditions {
        sleep_conditions: task
            .sleep_conditions
            .into_iter()
            .map(|c| v1::SleepMatchCondition {
                base: create(c.base),
                ..c
            })
            .collect(),
        user_event_conditions: task
            .user_event_conditions
            .into_iter()
            .map(|c| v1::UserEventMatchCondition {
                base: create(c.base),
                ..c
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parents() -> Vec<String> {
        vec!["start".into()]
    }

    #[test]
    fn groups_become_or_groups_with_their_action() {
        let mut c = TaskConditions::default();
        c.wait_for(AnyOf::new([
            Condition::sleep(Duration::from_secs(60)),
            Condition::event("go"),
        ]));
        c.skip_if(Condition::parent("start", "output.n > 1").into());
        c.cancel_if(Condition::event_matching("abort", "input.hard").into());
        c.validate(&parents()).unwrap();
        let p = c.to_proto("team_").unwrap();

        assert_eq!(p.sleep_conditions.len(), 1);
        let sleep = &p.sleep_conditions[0];
        assert_eq!(sleep.sleep_for, "1m");
        let sleep_base = sleep.base.as_ref().unwrap();
        assert_eq!(sleep_base.action, v1::Action::Queue as i32);
        assert_eq!(sleep_base.readable_data_key, "sleep:1m");

        let events = &p.user_event_conditions;
        assert_eq!(events.len(), 2);
        let go = events[0].base.as_ref().unwrap();
        assert_eq!(events[0].user_event_key, "team_go");
        assert_eq!(
            go.or_group_id, sleep_base.or_group_id,
            "one group: either releases the task"
        );
        let abort = events[1].base.as_ref().unwrap();
        assert_eq!(abort.action, v1::Action::Cancel as i32);
        assert_eq!(abort.expression, "input.hard");
        assert_ne!(abort.or_group_id, go.or_group_id);

        let parent = &p.parent_override_conditions[0];
        assert_eq!(parent.parent_readable_id, "start");
        let parent_base = parent.base.as_ref().unwrap();
        assert_eq!(parent_base.action, v1::Action::Skip as i32);
        assert_eq!(parent_base.expression, "output.n > 1");
        let ids: BTreeSet<_> = [&sleep_base.or_group_id, &parent_base.or_group_id, &abort.or_group_id]
            .into_iter()
            .collect();
        assert_eq!(ids.len(), 3, "each group its own id");
        for id in ids {
            assert_eq!(id.len(), 36, "a UUID: {id}");
        }
    }

    #[test]
    fn a_durable_wait_creates_its_conditions_and_refuses_parent_ones() {
        let groups = [
            AnyOf::new([Condition::sleep(Duration::from_secs(30)), Condition::event("go")]),
            Condition::event_matching("paid", "input.ok").into(),
        ];
        let c = durable_conditions(&groups, "team_", None).unwrap();
        assert_eq!(c.sleep_conditions.len(), 1);
        assert_eq!(c.sleep_conditions[0].sleep_for, "30s");
        let bases: Vec<_> = c
            .sleep_conditions
            .iter()
            .filter_map(|s| s.base.as_ref())
            .chain(c.user_event_conditions.iter().filter_map(|e| e.base.as_ref()))
            .collect();
        assert!(bases.iter().all(|b| b.action == v1::Action::Create as i32));
        assert_eq!(bases[0].readable_data_key, "sleep:30s");
        assert_eq!(bases[0].or_group_id, bases[1].or_group_id, "sleep or go");
        assert_ne!(bases[1].or_group_id, bases[2].or_group_id, "and paid");
        assert_eq!(c.user_event_conditions[0].user_event_key, "team_go");
        assert_eq!(
            durable_conditions(&groups, "team_", None),
            Ok(c),
            "a replay sends the same"
        );

        let e = durable_conditions(&[Condition::parent("start", "true").into()], "", None).unwrap_err();
        assert!(e.contains("not a parent"), "{e}");
        assert!(durable_conditions(&[], "", None).is_err());
    }

    #[test]
    fn an_event_lookback_counts_back_from_the_runs_time_and_needs_a_scope() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1000);
        let looking = [AnyOf::from(
            Condition::event("paid")
                .scope("order-7")
                .lookback(Duration::from_secs(60)),
        )];
        assert!(needs_lookback(&looking));
        let c = durable_conditions(&looking, "", Some(now)).unwrap();
        let e = &c.user_event_conditions[0];
        assert_eq!(e.event_scope.as_deref(), Some("order-7"));
        assert_eq!(e.consider_events_since.as_ref().map(|t| t.seconds), Some(940));

        let unscoped = [AnyOf::from(Condition::event("paid").lookback(Duration::from_secs(60)))];
        let e = durable_conditions(&unscoped, "", Some(now)).unwrap_err();
        assert!(e.contains("needs a scope"), "{e}");

        let mut task = TaskConditions::default();
        task.wait_for(Condition::event("paid").scope("order-7").into());
        let e = task.validate(&[]).unwrap_err();
        assert!(
            e.contains("durable wait"),
            "a task's condition cannot have a scope: {e}"
        );
    }

    #[test]
    fn the_same_definition_makes_the_same_request() {
        let make = || {
            let mut c = TaskConditions::default();
            c.wait_for(Condition::sleep(Duration::from_secs(5)).into());
            c.wait_for(Condition::event("go").into());
            c.to_proto("")
        };
        assert_eq!(make(), make());
        assert_eq!(TaskConditions::default().to_proto(""), None);
    }

    #[test]
    fn what_the_engine_would_mishandle_is_refused() {
        let refused = |c: TaskConditions, needle: &str| {
            let e = c.validate(&parents()).unwrap_err();
            assert!(e.contains(needle), "{e:?} should mention {needle:?}");
        };
        let mut c = TaskConditions::default();
        c.skip_if(AnyOf::new([]));
        refused(c, "empty group");

        let mut c = TaskConditions::default();
        c.skip_if(Condition::parent("other", "true").into());
        refused(c, "not a parent");

        let mut c = TaskConditions::default();
        c.skip_if(Condition::parent("start", " ").into());
        refused(c, "no expression");

        let mut c = TaskConditions::default();
        c.wait_for(Condition::event("").into());
        refused(c, "key is empty");

        let mut c = TaskConditions::default();
        c.wait_for(Condition::event("go").into());
        c.skip_if(Condition::event("go").into());
        refused(c, "data_key");

        let mut c = TaskConditions::default();
        c.wait_for(Condition::event("go").into());
        c.skip_if(Condition::event("go").data_key("go-skip").into());
        c.validate(&parents()).unwrap();

        let mut c = TaskConditions::default();
        c.wait_for(Condition::sleep(Duration::ZERO).into());
        refused(c, "sleep");
    }
}
