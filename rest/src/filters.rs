//! Event filters (which pushed events start a workflow, by scope and CEL expression): what
//! the official SDKs' `filters` feature client does. Scopes and expressions are not
//! namespaced, as in the SDKs.

use futures::Stream;
use serde::Serialize;

use crate::error::answer;
use crate::generated::prelude::*;
use crate::options::object;
use crate::types::{V1CreateFilterRequest, V1Filter, V1UpdateFilterRequest};
use crate::{PAGE_SIZE, Rest, Result, Uuid, paged};

/// The tenant's event filters.
#[derive(Debug, Clone, Copy)]
pub struct Filters<'a> {
    pub(crate) rest: &'a Rest,
}

impl Filters<'_> {
    /// A filter on workflow `workflow_id`: events pushed with `scope` start it only when the
    /// CEL `expression` holds; `payload` is handed to the runs it lets through.
    pub async fn create(
        &self,
        workflow_id: Uuid,
        scope: &str,
        expression: &str,
        payload: &impl Serialize,
    ) -> Result<V1Filter> {
        const OP: &str = "v1-filter:create";
        let body = V1CreateFilterRequest {
            expression: expression.to_owned(),
            payload: object(payload, "a filter's payload")?,
            scope: scope.to_owned(),
            workflow_id,
        };
        answer(
            OP,
            self.rest
                .api
                .v1_filter_create()
                .tenant(self.rest.tenant)
                .body(body)
                .send(),
        )
        .await
    }

    /// The filters of these workflows and scopes (every one when both are empty), page by
    /// page as the stream is read.
    pub fn list(&self, workflow_ids: &[Uuid], scopes: &[String]) -> impl Stream<Item = Result<V1Filter>> + '_ {
        const OP: &str = "v1-filter:list";
        let (workflow_ids, scopes) = (workflow_ids.to_vec(), scopes.to_vec());
        paged(move |offset| {
            let call = self
                .rest
                .api
                .v1_filter_list()
                .tenant(self.rest.tenant)
                .limit(PAGE_SIZE)
                .offset(offset)
                .workflow_ids(workflow_ids.clone())
                .scopes(scopes.clone());
            async move {
                let page = answer(OP, call.send()).await?;
                Ok((page.rows, page.pagination))
            }
        })
    }

    /// Filter `id`.
    pub async fn get(&self, id: Uuid) -> Result<V1Filter> {
        const OP: &str = "v1-filter:get";
        answer(
            OP,
            self.rest
                .api
                .v1_filter_get()
                .tenant(self.rest.tenant)
                .v1_filter(id)
                .send(),
        )
        .await
    }

    /// Changes what `change` sets of filter `id`.
    pub async fn update(&self, id: Uuid, change: FilterChange) -> Result<V1Filter> {
        const OP: &str = "v1-filter:update";
        let body = V1UpdateFilterRequest {
            expression: change.expression,
            payload: match &change.payload {
                Some(p) => object(p, "a filter's payload")?,
                None => serde_json::Map::new(),
            },
            scope: change.scope,
        };
        let call = self
            .rest
            .api
            .v1_filter_update()
            .tenant(self.rest.tenant)
            .v1_filter(id)
            .body(body);
        answer(OP, call.send()).await
    }

    /// Deletes filter `id`; what it was.
    pub async fn delete(&self, id: Uuid) -> Result<V1Filter> {
        const OP: &str = "v1-filter:delete";
        answer(
            OP,
            self.rest
                .api
                .v1_filter_delete()
                .tenant(self.rest.tenant)
                .v1_filter(id)
                .send(),
        )
        .await
    }
}

/// What a filter update changes (`None` keeps it).
#[derive(Debug, Clone, Default)]
pub struct FilterChange {
    /// A new CEL expression.
    pub expression: Option<String>,
    /// A new scope.
    pub scope: Option<String>,
    /// A new payload (a JSON object; an empty one keeps the old, the contract sends none).
    pub payload: Option<serde_json::Value>,
}
