//! An in-memory engine behind [`WorkerEngine`], for tests of the runtime's races and outages
//! that the real engine cannot stage on demand. It keeps what the worker told it and lets a
//! test push assignments, forget the worker, or refuse calls, the way the engine does.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use hatchet_proto::v1::{CreateWorkflowVersionRequest, CreateWorkflowVersionResponse, DurableTaskRequest};
use hatchet_proto::{
    ActionEventResponse, ActionType, AssignedAction, GetVersionResponse, HeartbeatRequest, HeartbeatResponse,
    RefreshTimeoutRequest, RefreshTimeoutResponse, ReleaseSlotRequest, ReleaseSlotResponse, RestoreEvictedTaskRequest,
    RestoreEvictedTaskResponse, StepActionEvent,
    StepActionEventType, WorkerListenRequest, WorkerRegisterRequest, WorkerRegisterResponse, WorkerUnsubscribeRequest,
    WorkerUnsubscribeResponse,
};
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Response, Status};

use super::engine::{Assignments, DurableResponses, Reply, WorkerEngine};

/// What the fake engine has seen and what it will answer.
#[derive(Default)]
pub(crate) struct State {
    /// Every `Register`, in order; the worker id of the n-th is `worker-n`.
    pub(crate) registrations: Vec<WorkerRegisterRequest>,
    /// Worker ids the engine knows (forgetting one makes its calls answer `NotFound`).
    known: HashSet<String>,
    /// The open assignment stream and whose it is.
    stream: Option<(String, mpsc::UnboundedSender<Result<AssignedAction, Status>>)>,
    /// Every event reported, with the worker id it carried.
    pub(crate) events: Vec<StepActionEvent>,
    pub(crate) heartbeats: usize,
    pub(crate) paused: Vec<String>,
    pub(crate) unsubscribed: Vec<String>,
    /// What `Register` answers instead of registering.
    register_refusal: Option<Status>,
}

impl State {
    /// The events reported for `task_run`, as (kind, should_not_retry, retry_count).
    pub(crate) fn events_of(&self, task_run: &str) -> Vec<(StepActionEventType, bool, i32)> {
        self.events
            .iter()
            .filter(|e| e.task_run_external_id == task_run)
            .map(|e| {
                (
                    StepActionEventType::try_from(e.event_type).expect("event type"),
                    e.should_not_retry.unwrap_or_default(),
                    e.retry_count.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// The worker id whose stream is open.
    pub(crate) fn listening(&self) -> Option<&str> {
        self.stream.as_ref().map(|(id, _)| id.as_str())
    }
}

/// The fake engine; every change to its state wakes [`FakeEngine::until`].
#[derive(Default)]
pub(crate) struct FakeEngine {
    state: Mutex<State>,
    changed: Notify,
}

impl FakeEngine {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Refuses every `Register` with `status`.
    pub(crate) fn refuse_register(&self, status: Status) {
        self.update(|s| s.register_refusal = Some(status));
    }

    /// Waits until `f` finds what it looks for in the state.
    pub(crate) async fn until<T>(&self, mut f: impl FnMut(&State) -> Option<T>) -> T {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(t) = f(&self.state.lock().expect("fake engine lock")) {
                return t;
            }
            changed.await;
        }
    }

    /// Reads the state now.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock().expect("fake engine lock"))
    }

    /// Sends `action` on the worker's stream, once it has one.
    pub(crate) async fn assign(&self, action: AssignedAction) {
        let tx = self.until(|s| s.stream.as_ref().map(|(_, tx)| tx.clone())).await;
        tx.send(Ok(action)).expect("the worker's stream is open");
    }

    /// Forgets the worker that listens, as an engine does whose database lost it: its stream
    /// ends and its calls answer `NotFound` from now on.
    pub(crate) fn forget_worker(&self) {
        self.update(|s| {
            if let Some((id, _)) = s.stream.take() {
                s.known.remove(&id);
            }
        });
    }

    fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let t = f(&mut self.state.lock().expect("fake engine lock"));
        self.changed.notify_waiters();
        t
    }

    /// Answers for a known worker, `NotFound` otherwise (as the engine's dispatcher does).
    fn for_worker<T>(&self, worker_id: &str, f: impl FnOnce(&mut State) -> T) -> Result<Response<T>, Status> {
        self.update(|s| {
            if s.known.contains(worker_id) {
                Ok(Response::new(f(s)))
            } else {
                Err(Status::not_found(format!("worker {worker_id} not found")))
            }
        })
    }
}

/// An assignment to start `task_run` (attempt `retry_count + 1`) of `action_id`.
pub(crate) fn start(task_run: &str, action_id: &str, retry_count: i32) -> AssignedAction {
    AssignedAction {
        task_run_external_id: task_run.to_owned(),
        action_id: action_id.to_owned(),
        action_type: ActionType::StartStepRun as i32,
        action_payload: r#"{"input":{}}"#.to_owned(),
        retry_count,
        ..AssignedAction::default()
    }
}

/// The engine's cancel of `task_run`.
pub(crate) fn cancel(task_run: &str, action_id: &str) -> AssignedAction {
    AssignedAction {
        action_type: ActionType::CancelStepRun as i32,
        ..start(task_run, action_id, 0)
    }
}

fn ready<T: Send + 'static>(r: Result<Response<T>, Status>) -> Reply<'static, T> {
    Box::pin(std::future::ready(r))
}

impl WorkerEngine for FakeEngine {
    fn get_version(&self) -> Reply<'_, GetVersionResponse> {
        ready(Ok(Response::new(GetVersionResponse {
            version: "v0.104.7".into(),
        })))
    }

    fn put_workflow(&self, _req: CreateWorkflowVersionRequest) -> Reply<'_, CreateWorkflowVersionResponse> {
        ready(Ok(Response::new(CreateWorkflowVersionResponse::default())))
    }

    fn register(&self, req: WorkerRegisterRequest) -> Reply<'_, WorkerRegisterResponse> {
        ready(self.update(|s| {
            if let Some(refusal) = &s.register_refusal {
                return Err(refusal.clone());
            }
            s.registrations.push(req);
            let worker_id = format!("worker-{}", s.registrations.len());
            s.known.insert(worker_id.clone());
            Ok(Response::new(WorkerRegisterResponse {
                worker_id,
                ..WorkerRegisterResponse::default()
            }))
        }))
    }

    fn listen(&self, req: WorkerListenRequest) -> Reply<'_, Assignments> {
        ready(self.for_worker(&req.worker_id, |s| {
            let (tx, rx) = mpsc::unbounded_channel();
            s.stream = Some((req.worker_id.clone(), tx));
            Box::pin(UnboundedReceiverStream::new(rx)) as Assignments
        }))
    }

    fn heartbeat(&self, req: HeartbeatRequest) -> Reply<'_, HeartbeatResponse> {
        ready(self.for_worker(&req.worker_id, |s| {
            s.heartbeats += 1;
            HeartbeatResponse::default()
        }))
    }

    fn send_step_action_event(&self, event: StepActionEvent) -> Reply<'_, ActionEventResponse> {
        ready(self.update(|s| {
            s.events.push(event);
            Ok(Response::new(ActionEventResponse::default()))
        }))
    }

    fn unsubscribe(&self, req: WorkerUnsubscribeRequest) -> Reply<'_, WorkerUnsubscribeResponse> {
        ready(self.update(|s| {
            s.unsubscribed.push(req.worker_id);
            s.stream = None;
            Ok(Response::new(WorkerUnsubscribeResponse::default()))
        }))
    }

    fn release_slot(&self, _req: ReleaseSlotRequest) -> Reply<'_, ReleaseSlotResponse> {
        ready(Ok(Response::new(ReleaseSlotResponse::default())))
    }

    fn refresh_timeout(&self, _req: RefreshTimeoutRequest) -> Reply<'_, RefreshTimeoutResponse> {
        ready(Ok(Response::new(RefreshTimeoutResponse::default())))
    }

    fn durable_task(&self, _requests: UnboundedReceiverStream<DurableTaskRequest>) -> Reply<'_, DurableResponses> {
        ready(Err(Status::unimplemented("the fake engine keeps no durable event log")))
    }

    fn restore_evicted_task(&self, _req: RestoreEvictedTaskRequest) -> Reply<'_, RestoreEvictedTaskResponse> {
        ready(Err(Status::unimplemented("the fake engine keeps no durable event log")))
    }

    fn set_paused(&self, worker_id: String, _paused: bool) -> BoxFuture<'_, crate::Result<()>> {
        self.update(|s| s.paused.push(worker_id));
        Box::pin(std::future::ready(Ok(())))
    }
}
