//! Pushing events: one, or many in one call; workflows listening for an event's key start runs
//! with its payload as input, at its priority.

use hatchet_proto::{BulkPushEventRequest, PushEventRequest};
use serde::Serialize;
use serde_json::Value;

use super::{Client, call_unrepeatable, now_timestamp};
use crate::{Error, Result};

/// What goes with a pushed event besides its key and payload.
#[derive(Debug, Clone, Default)]
pub struct EventOptions {
    metadata: serde_json::Map<String, Value>,
    priority: Option<i32>,
    scope: Option<String>,
}

impl EventOptions {
    /// Additional metadata, carried to the runs the event starts.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The priority of the runs the event starts (1 lowest to 3 highest, as the engine takes it).
    pub fn priority(mut self, p: i32) -> Self {
        self.priority = Some(p);
        self
    }

    /// The scope event filters match on.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

/// One event of [`Client::push_events`].
#[derive(Debug, Clone)]
pub struct BulkEvent {
    /// The event's key (namespaced like every key).
    pub key: String,
    /// Its payload, the input of the runs it starts.
    pub payload: Value,
    /// Its metadata, priority and scope.
    pub options: EventOptions,
}

impl Client {
    /// Pushes an event; workflows listening for `key` start runs with `payload` as input.
    pub async fn push_event<P: Serialize>(
        &self,
        key: &str,
        payload: &P,
        metadata: Option<serde_json::Map<String, Value>>,
    ) -> Result<String> {
        let options = EventOptions {
            metadata: metadata.unwrap_or_default(),
            ..EventOptions::default()
        };
        self.push_event_with(key, payload, options).await
    }

    /// [`Client::push_event`] with a priority and a scope; the event's id.
    pub async fn push_event_with<P: Serialize>(&self, key: &str, payload: &P, options: EventOptions) -> Result<String> {
        let req = self.event_request(key, payload, &options)?;
        let ev = call_unrepeatable("Push", || {
            let mut c = self.engine().events.clone();
            let mut req = req.clone();
            req.event_timestamp = Some(now_timestamp());
            async move { c.push(req).await }
        })
        .await?;
        Ok(ev.event_id)
    }

    /// Pushes `events` in one call (the official SDKs' bulk push); their ids, in order.
    pub async fn push_events(&self, events: &[BulkEvent]) -> Result<Vec<String>> {
        let requests = events
            .iter()
            .map(|e| self.event_request(&e.key, &e.payload, &e.options))
            .collect::<Result<Vec<_>>>()?;
        let pushed = call_unrepeatable("BulkPush", || {
            let mut c = self.engine().events.clone();
            let now = now_timestamp();
            let events = requests
                .iter()
                .cloned()
                .map(|mut r| {
                    r.event_timestamp = Some(now);
                    r
                })
                .collect();
            async move { c.bulk_push(BulkPushEventRequest { events }).await }
        })
        .await?;
        Ok(pushed.events.into_iter().map(|e| e.event_id).collect())
    }

    /// The wire form of one event, refused before sending if the runs it starts could not be
    /// delivered.
    fn event_request<P: Serialize>(&self, key: &str, payload: &P, options: &EventOptions) -> Result<PushEventRequest> {
        let payload = serde_json::to_string(payload).map_err(|e| Error::Payload(e.to_string()))?;
        let outgoing = super::outgoing_metadata(&options.metadata);
        let metadata = (!outgoing.is_empty())
            .then(|| serde_json::to_string(&outgoing).map_err(|e| Error::Payload(e.to_string())))
            .transpose()?;
        self.check_deliverable(
            &format!("event {key:?}"),
            payload.as_bytes(),
            2,
            metadata.as_deref().unwrap_or("").as_bytes(),
        )?;
        Ok(PushEventRequest {
            key: self.config().namespaced(key),
            payload,
            event_timestamp: None,
            additional_metadata: metadata,
            priority: options.priority,
            scope: options.scope.clone(),
        })
    }
}
