//! Events as the engine recorded them (pushing one is gRPC, `hatchet_worker::Client`): what
//! the official SDKs' `events` list and get do.

use chrono::{DateTime, Utc};
use futures::Stream;

use crate::error::answer;
use crate::generated::prelude::*;
use crate::options::{items, pairs};
use crate::types::{EventKey, V1Event, V1TaskStatus};
use crate::{PAGE_SIZE, Rest, Result, Uuid, paged};

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events with these keys, sent as given, as the official SDKs send them: an event
    /// a namespaced client pushed is stored under its namespaced key (`{namespace}{key}`).
    pub keys: Vec<String>,
    /// Only events seen at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Only events seen before this.
    pub until: Option<DateTime<Utc>>,
    /// Only events that triggered runs of these workflows (by id).
    pub workflow_ids: Vec<Uuid>,
    /// Only events whose runs are in these states.
    pub run_statuses: Vec<V1TaskStatus>,
    /// Only these events (by id).
    pub ids: Vec<Uuid>,
    /// Only events whose additional metadata has these `key`/`value` pairs.
    pub metadata: Vec<(String, String)>,
    /// Only events pushed with these scopes.
    pub scopes: Vec<String>,
}

/// The tenant's events.
#[derive(Debug, Clone, Copy)]
pub struct Events<'a> {
    pub(crate) rest: &'a Rest,
}

impl Events<'_> {
    /// The events `filter` matches, newest first, page by page as the stream is read.
    pub fn list(&self, filter: &EventFilter) -> impl Stream<Item = Result<V1Event>> + '_ {
        const OP: &str = "v1-event:list";
        let filter = filter.clone();
        let keys: Vec<EventKey> = filter.keys.iter().cloned().map(EventKey::from).collect();
        let scopes = items(&filter.scopes, "scope");
        let metadata = items(&pairs(&filter.metadata), "metadata filter");
        paged(move |offset| {
            let (scopes, metadata) = (scopes.clone(), metadata.clone());
            let mut call = self
                .rest
                .api
                .v1_event_list()
                .tenant(self.rest.tenant)
                .limit(PAGE_SIZE)
                .offset(offset)
                .keys(keys.clone())
                .workflow_ids(filter.workflow_ids.clone())
                .workflow_run_statuses(filter.run_statuses.clone())
                .event_ids(filter.ids.clone());
            if let Some(since) = filter.since {
                call = call.since(since);
            }
            if let Some(until) = filter.until {
                call = call.until(until);
            }
            async move {
                let call = call.scopes(scopes?).additional_metadata(metadata?);
                let page = answer(OP, call.send()).await?;
                Ok((page.rows, page.pagination))
            }
        })
    }

    /// Event `id`: its key, payload, metadata and the runs it triggered.
    pub async fn get(&self, id: Uuid) -> Result<V1Event> {
        const OP: &str = "v1-event:get";
        let call = self.rest.api.v1_event_get().tenant(self.rest.tenant).v1_event(id);
        answer(OP, call.send()).await
    }
}
