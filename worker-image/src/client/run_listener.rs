//! One `SubscribeToWorkflowRuns` stream per client, shared by every wait: a waiter registers a
//! run id and is woken when the engine reports the run finished (the engine answers for runs
//! finished before they were asked about too: it checks the ones not yet reported every
//! second). 1,000 awaited runs cost one stream, not 1,000 pollers. The stream is opened only
//! while someone waits, and reopened (asking again for every run still awaited) when it breaks.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use hatchet_proto::dispatcher_client::DispatcherClient;
use hatchet_proto::{SubscribeToWorkflowRunsRequest, WorkflowRunEvent};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::connection::AuthChannel;
use crate::retry::jittered;

/// Reconnect backoff after the stream breaks: full jitter, 250 ms doubling to 10 s.
const RECONNECT_BASE: Duration = Duration::from_millis(250);
const RECONNECT_MAX: Duration = Duration::from_secs(10);

/// The handle waits go through; the stream lives in a task of its own.
#[derive(Debug)]
pub(crate) struct RunListener {
    waiters: mpsc::UnboundedSender<Waiter>,
}

struct Waiter {
    run_id: String,
    finished: oneshot::Sender<()>,
}

impl RunListener {
    /// Starts the listener's task (on the current runtime).
    pub(crate) fn start(dispatcher: DispatcherClient<AuthChannel>) -> Self {
        let (waiters, rx) = mpsc::unbounded_channel();
        tokio::spawn(serve(dispatcher, rx));
        Self { waiters }
    }

    /// Resolves once the engine reports `run_id` finished (or at once if the listener is gone,
    /// so the caller falls back to asking the engine itself).
    pub(crate) fn finished(&self, run_id: &str) -> impl Future<Output = ()> + use<> {
        let (tx, rx) = oneshot::channel();
        let _ = self.waiters.send(Waiter {
            run_id: run_id.to_owned(),
            finished: tx,
        });
        async move {
            let _ = rx.await;
        }
    }
}

/// The runs being waited for, by id.
#[derive(Default)]
struct Awaited(HashMap<String, Vec<oneshot::Sender<()>>>);

impl Awaited {
    /// Adds a waiter; whether its run is new (and must be asked for).
    fn add(&mut self, w: Waiter) -> bool {
        let list = self.0.entry(w.run_id).or_default();
        list.push(w.finished);
        list.len() == 1
    }

    fn finished(&mut self, event: &WorkflowRunEvent) {
        for w in self.0.remove(&event.workflow_run_id).unwrap_or_default() {
            let _ = w.send(());
        }
    }

    /// Forgets waiters that gave up; the run ids still awaited.
    fn prune(&mut self) -> Vec<String> {
        self.0.retain(|_, ws| {
            ws.retain(|w| !w.is_closed());
            !ws.is_empty()
        });
        self.0.keys().cloned().collect()
    }
}

async fn serve(dispatcher: DispatcherClient<AuthChannel>, mut waiters: mpsc::UnboundedReceiver<Waiter>) {
    let mut awaited = Awaited::default();
    let mut attempt = 0;
    loop {
        let ids = awaited.prune();
        if ids.is_empty() {
            match waiters.recv().await {
                Some(w) => {
                    awaited.add(w);
                }
                None => return,
            }
            continue;
        }
        let (ask, asked) = mpsc::unbounded_channel();
        for workflow_run_id in ids {
            let _ = ask.send(SubscribeToWorkflowRunsRequest { workflow_run_id });
        }
        match listen(dispatcher.clone(), &ask, asked, &mut waiters, &mut awaited).await {
            Ended::NoMoreWaiters => return,
            Ended::Broke { after_events } => {
                if after_events {
                    attempt = 0;
                }
                let wait = jittered(attempt, RECONNECT_BASE, RECONNECT_MAX);
                attempt = attempt.saturating_add(1);
                tracing::debug!(?wait, "workflow run subscription broke; reopening");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

enum Ended {
    NoMoreWaiters,
    /// The stream failed or ended; `after_events` if it delivered any first.
    Broke {
        after_events: bool,
    },
}

/// Runs one stream until it breaks, asking for new runs as waiters come.
async fn listen(
    mut dispatcher: DispatcherClient<AuthChannel>,
    ask: &mpsc::UnboundedSender<SubscribeToWorkflowRunsRequest>,
    asked: mpsc::UnboundedReceiver<SubscribeToWorkflowRunsRequest>,
    waiters: &mut mpsc::UnboundedReceiver<Waiter>,
    awaited: &mut Awaited,
) -> Ended {
    // tonic resolves the call when the engine sends response headers, which may be with its
    // first event: requests keep flowing meanwhile.
    let call = dispatcher.subscribe_to_workflow_runs(UnboundedReceiverStream::new(asked));
    tokio::pin!(call);
    let mut events = loop {
        tokio::select! {
            r = &mut call => match r {
                Ok(r) => break r.into_inner(),
                Err(status) => {
                    tracing::debug!(code = ?status.code(), "workflow run subscription refused: {}", status.message());
                    return Ended::Broke { after_events: false };
                }
            },
            w = waiters.recv() => match w {
                Some(w) => ask_for(ask, awaited, w),
                None => return Ended::NoMoreWaiters,
            },
        }
    };
    let mut delivered = false;
    loop {
        tokio::select! {
            e = events.next() => match e {
                Some(Ok(event)) => {
                    delivered = true;
                    awaited.finished(&event);
                }
                Some(Err(status)) => {
                    tracing::debug!(code = ?status.code(), "workflow run subscription failed: {}", status.message());
                    return Ended::Broke { after_events: delivered };
                }
                None => return Ended::Broke { after_events: delivered },
            },
            w = waiters.recv() => match w {
                Some(w) => ask_for(ask, awaited, w),
                None => return Ended::NoMoreWaiters,
            },
        }
    }
}

fn ask_for(ask: &mpsc::UnboundedSender<SubscribeToWorkflowRunsRequest>, awaited: &mut Awaited, w: Waiter) {
    let workflow_run_id = w.run_id.clone();
    if awaited.add(w) {
        let _ = ask.send(SubscribeToWorkflowRunsRequest { workflow_run_id });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(run: &str) -> (Waiter, oneshot::Receiver<()>) {
        let (finished, rx) = oneshot::channel();
        (
            Waiter {
                run_id: run.into(),
                finished,
            },
            rx,
        )
    }

    #[test]
    fn a_run_is_asked_for_once_and_wakes_all_its_waiters() {
        let mut a = Awaited::default();
        let (w1, mut r1) = waiter("run-1");
        let (w2, mut r2) = waiter("run-1");
        let (w3, mut r3) = waiter("run-2");
        assert!(a.add(w1), "first waiter of run-1 asks for it");
        assert!(!a.add(w2), "the second does not ask again");
        assert!(a.add(w3));
        a.finished(&WorkflowRunEvent {
            workflow_run_id: "run-1".into(),
            ..WorkflowRunEvent::default()
        });
        assert!(r1.try_recv().is_ok() && r2.try_recv().is_ok());
        assert!(r3.try_recv().is_err(), "run-2 still waits");
        assert_eq!(a.prune(), ["run-2"]);
    }

    #[test]
    fn waiters_that_gave_up_are_forgotten() {
        let mut a = Awaited::default();
        let (w, rx) = waiter("run-1");
        a.add(w);
        drop(rx);
        assert!(a.prune().is_empty());
    }
}
