//! An in-memory engine behind [`WorkerEngine`], for tests of the runtime's races and outages
//! that the real engine cannot stage on demand. It keeps what the worker told it and lets a
//! test push assignments, forget the worker, or refuse calls, the way the engine does.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use hatchet_proto::v1::durable_task_request::Message as DurableMessage;
use hatchet_proto::v1::durable_task_response::Message as DurableReply;
use hatchet_proto::v1::{
    CreateWorkflowVersionRequest, CreateWorkflowVersionResponse, DurableEventLogEntryRef, DurableTaskRequest,
    DurableTaskResponse,
};
use hatchet_proto::{
    ActionEventResponse, ActionType, AssignedAction, GetVersionResponse, HeartbeatRequest, HeartbeatResponse,
    RefreshTimeoutRequest, RefreshTimeoutResponse, ReleaseSlotRequest, ReleaseSlotResponse, RestoreEvictedTaskRequest,
    RestoreEvictedTaskResponse, StepActionEvent, StepActionEventType, WorkerListenRequest, WorkerRegisterRequest,
    WorkerRegisterResponse, WorkerUnsubscribeRequest, WorkerUnsubscribeResponse,
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
    /// The durable tasks' event logs and the worker's durable-task stream.
    pub(crate) durable: DurableLog,
}

/// A durable event log as the engine keeps it, reduced to what the worker sees: entries by
/// task in node order (numbered from 1 in each invocation), each with the request that made
/// it and its result once satisfied.
#[derive(Default)]
pub(crate) struct DurableLog {
    pub(crate) entries: std::collections::HashMap<String, Vec<LogEntry>>,
    /// The next node per (task, invocation).
    next_node: std::collections::HashMap<(String, i32), i64>,
    /// Every request received, in order.
    pub(crate) requests: Vec<DurableMessage>,
    stream: Option<mpsc::UnboundedSender<Result<DurableTaskResponse, Status>>>,
}

/// One log entry: what created it (compared on replay) and its result.
#[derive(Debug, Clone)]
pub(crate) struct LogEntry {
    identity: Vec<u8>,
    pub(crate) result: Option<Vec<u8>>,
}

impl DurableLog {
    fn reply(&self, m: DurableReply) {
        if let Some(tx) = &self.stream {
            let _ = tx.send(Ok(DurableTaskResponse { message: Some(m) }));
        }
    }

    fn entry_ref(task: &str, invocation: i32, node: i64) -> Option<DurableEventLogEntryRef> {
        Some(DurableEventLogEntryRef {
            durable_task_external_id: task.to_owned(),
            invocation_count: invocation,
            branch_id: 1,
            node_id: node,
        })
    }

    /// The next entry of `task`'s `invocation`: replayed if the log has it (a different
    /// identity is non-determinism), created otherwise. Its node and whether it existed.
    fn next(&mut self, task: &str, invocation: i32, identity: Vec<u8>) -> Result<(i64, Option<LogEntry>), String> {
        let node = self.next_node.entry((task.to_owned(), invocation)).or_insert(0);
        *node += 1;
        let node = *node;
        let log = self.entries.entry(task.to_owned()).or_default();
        match log.get(usize::try_from(node - 1).unwrap_or(usize::MAX)) {
            Some(e) if e.identity != identity => Err(format!("node {node} was made by another request")),
            Some(e) => Ok((node, Some(e.clone()))),
            None => {
                log.push(LogEntry { identity, result: None });
                Ok((node, None))
            }
        }
    }

    fn handle(&mut self, message: DurableMessage) {
        self.requests.push(message.clone());
        match message {
            DurableMessage::RegisterWorker(r) => self.reply(DurableReply::RegisterWorker(
                hatchet_proto::v1::DurableTaskResponseRegisterWorker { worker_id: r.worker_id },
            )),
            DurableMessage::Memo(m) => {
                match self.next(&m.durable_task_external_id, m.invocation_count, m.key.clone()) {
                    Ok((node, existing)) => {
                        let r#ref = Self::entry_ref(&m.durable_task_external_id, m.invocation_count, node);
                        self.reply(DurableReply::MemoAck(
                            hatchet_proto::v1::DurableTaskEventMemoAckResponse {
                                r#ref,
                                memo_already_existed: existing.is_some(),
                                memo_result_payload: existing.and_then(|e| e.result),
                            },
                        ));
                    }
                    Err(why) => self.nondeterminism(&m.durable_task_external_id, m.invocation_count, why),
                }
            }
            DurableMessage::WaitFor(w) => {
                let identity = w
                    .wait_for_conditions
                    .as_ref()
                    .map(prost::Message::encode_to_vec)
                    .unwrap_or_default();
                match self.next(&w.durable_task_external_id, w.invocation_count, identity) {
                    Ok((node, existing)) => {
                        let (task, invocation) = (w.durable_task_external_id, w.invocation_count);
                        self.reply(DurableReply::WaitForAck(
                            hatchet_proto::v1::DurableTaskEventWaitForAckResponse {
                                r#ref: Self::entry_ref(&task, invocation, node),
                            },
                        ));
                        if let Some(result) = existing.and_then(|e| e.result) {
                            self.completed(&task, invocation, node, result);
                        }
                    }
                    Err(why) => self.nondeterminism(&w.durable_task_external_id, w.invocation_count, why),
                }
            }
            DurableMessage::CompleteMemo(c) => {
                if let Some(r) = c.r#ref
                    && let Some(e) = self
                        .entries
                        .get_mut(&r.durable_task_external_id)
                        .and_then(|log| log.get_mut(usize::try_from(r.node_id - 1).unwrap_or(usize::MAX)))
                {
                    e.result = Some(c.payload);
                }
            }
            DurableMessage::EvictInvocation(e) => self.reply(DurableReply::EvictionAck(
                hatchet_proto::v1::DurableTaskEvictionAckResponse {
                    invocation_count: e.invocation_count,
                    durable_task_external_id: e.durable_task_external_id,
                },
            )),
            DurableMessage::WorkerStatus(s) => {
                for w in s.waiting_entries {
                    let result = self
                        .entries
                        .get(&w.durable_task_external_id)
                        .and_then(|log| log.get(usize::try_from(w.node_id - 1).unwrap_or(usize::MAX)))
                        .and_then(|e| e.result.clone());
                    if let Some(result) = result {
                        self.completed(&w.durable_task_external_id, w.invocation_count, w.node_id, result);
                    }
                }
            }
            DurableMessage::TriggerRuns(_) => {}
        }
    }

    fn completed(&self, task: &str, invocation: i32, node: i64, payload: Vec<u8>) {
        self.reply(DurableReply::EntryCompleted(
            hatchet_proto::v1::DurableTaskEventLogEntryCompletedResponse {
                r#ref: Self::entry_ref(task, invocation, node),
                payload,
                is_failure: false,
                error_message: None,
            },
        ));
    }

    fn nondeterminism(&self, task: &str, invocation: i32, why: String) {
        self.reply(DurableReply::Error(hatchet_proto::v1::DurableTaskErrorResponse {
            r#ref: Self::entry_ref(task, invocation, 0),
            error_type: hatchet_proto::v1::DurableTaskErrorType::Nondeterminism as i32,
            error_message: why,
        }));
    }

    /// The invocations the worker asked to evict, as (task, invocation).
    pub(crate) fn evictions(&self) -> Vec<(String, i32)> {
        self.requests
            .iter()
            .filter_map(|m| match m {
                DurableMessage::EvictInvocation(e) => Some((e.durable_task_external_id.clone(), e.invocation_count)),
                _ => None,
            })
            .collect()
    }

    /// How many waits the worker asked for.
    pub(crate) fn waits(&self) -> usize {
        self.requests
            .iter()
            .filter(|m| matches!(m, DurableMessage::WaitFor(_)))
            .count()
    }
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
pub(crate) struct FakeEngine {
    state: Mutex<State>,
    changed: Notify,
    /// Itself, for the tasks serving its streams.
    me: std::sync::Weak<FakeEngine>,
}

impl FakeEngine {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            state: Mutex::default(),
            changed: Notify::new(),
            me: me.clone(),
        })
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

    /// Satisfies entry `node` of `task` with `payload`, and tells the worker's stream (for
    /// `invocation`) as the engine does.
    pub(crate) fn satisfy(&self, task: &str, invocation: i32, node: i64, payload: &str) {
        self.update(|s| {
            let log = s.durable.entries.get_mut(task).expect("the task has a log");
            log[usize::try_from(node - 1).expect("node from 1")].result = Some(payload.as_bytes().to_vec());
            s.durable.completed(task, invocation, node, payload.as_bytes().to_vec());
        });
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

    fn durable_task(&self, requests: UnboundedReceiverStream<DurableTaskRequest>) -> Reply<'_, DurableResponses> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.update(|s| s.durable.stream = Some(tx));
        let me = self.me.upgrade().expect("the fake engine is alive");
        tokio::spawn(async move {
            let mut requests = requests;
            while let Some(r) = futures::StreamExt::next(&mut requests).await {
                if let Some(m) = r.message {
                    me.update(|s| s.durable.handle(m));
                }
            }
        });
        ready(Ok(Response::new(
            Box::pin(UnboundedReceiverStream::new(rx)) as DurableResponses
        )))
    }

    fn restore_evicted_task(&self, _req: RestoreEvictedTaskRequest) -> Reply<'_, RestoreEvictedTaskResponse> {
        ready(Err(Status::unimplemented("the fake engine keeps no durable event log")))
    }

    fn set_paused(&self, worker_id: String, _paused: bool) -> BoxFuture<'_, crate::Result<()>> {
        self.update(|s| s.paused.push(worker_id));
        Box::pin(std::future::ready(Ok(())))
    }
}
