//! Following the chunks a run's tasks stream with `Context::stream`, as they are sent.

use std::pin::Pin;
use std::task::{Poll, ready};

use futures::{Stream, StreamExt};
use hatchet_proto::{ResourceEventType, SubscribeToWorkflowEventsRequest};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Client;
use crate::{Error, Result};

/// Chunks buffered between the engine and a slow reader before the engine is made to wait.
const BUFFER: usize = 256;

/// The chunks a run's tasks stream, in order; ends when the run ends. Dropping it closes the
/// subscription.
pub struct RunStream {
    rx: mpsc::Receiver<Result<Vec<u8>>>,
    task: JoinHandle<()>,
}

impl Drop for RunStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stream for RunStream {
    type Item = Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(ready!(self.rx.poll_recv(cx)))
    }
}

impl Client {
    /// Subscribes to the chunks the tasks of `workflow_run_id` stream. The engine keeps no
    /// history of them: only chunks sent after the subscription is in place arrive.
    pub fn subscribe_stream(&self, workflow_run_id: &str) -> RunStream {
        let (tx, rx) = mpsc::channel(BUFFER);
        let mut dispatcher = self.engine.dispatcher.clone();
        let req = SubscribeToWorkflowEventsRequest {
            workflow_run_id: Some(workflow_run_id.to_owned()),
            additional_meta_key: None,
            additional_meta_value: None,
        };
        // Read in its own task: the engine sends the response headers only with the first
        // event, so the call itself resolves late.
        let task = tokio::spawn(async move {
            let mut events = match dispatcher.subscribe_to_workflow_events(req).await {
                Ok(r) => r.into_inner(),
                Err(status) => {
                    let _ = tx.send(Err(Error::rpc("SubscribeToWorkflowEvents", status))).await;
                    return;
                }
            };
            while let Some(event) = events.next().await {
                let item = match event {
                    Ok(e) if e.event_type == ResourceEventType::Stream as i32 => Ok(e.event_payload.into_bytes()),
                    Ok(e) if e.hangup => return,
                    Ok(_) => continue,
                    Err(status) => Err(Error::rpc("SubscribeToWorkflowEvents", status)),
                };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        RunStream { rx, task }
    }
}
