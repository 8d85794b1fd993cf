//! The thin async loop around the listener state machine: performs its effects (register,
//! open the stream, heartbeat), dispatches assignments to executors, and drains.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hatchet_proto::{
    ActionType, AssignedAction, HeartbeatRequest, RuntimeInfo, WorkerListenRequest, WorkerRegisterRequest,
    WorkerUnsubscribeRequest,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::engine::WorkerEngine;
use super::executor;
use super::in_flight::CancelReason;
use super::listener::{Effect, Input, Listener};
use super::shared::Shared;
use super::state::Lifecycle;
use super::worker::Exit;
use crate::client::{now_timestamp, worker_labels};
use crate::retry::is_message_too_large;
use crate::workflow::slot_type;
use crate::{Error, Result};

/// Longest the loop sleeps between ticks, so a stalled loop is visible to `/livez`.
const MAX_TICK: Duration = Duration::from_millis(500);
/// Deadline for `Register`.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
/// After the drain deadline, how long abandoned tasks get to report their failure.
const ABANDON_REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// The thin async loop that performs the listener's effects.
pub(super) struct Driver {
    shared: Arc<Shared>,
    listener: Listener,
    stream: Option<AssignmentStream>,
    heartbeats: (mpsc::Sender<Input>, mpsc::Receiver<Input>),
    lifecycle: watch::Receiver<Lifecycle>,
    /// The drain's effects (slots closed, worker paused) were performed.
    drain_started: bool,
}

impl Driver {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self {
            listener: Listener::with_auth_grace(shared.auth_outage_grace),
            lifecycle: shared.lifecycle.subscribe(),
            shared,
            stream: None,
            heartbeats: mpsc::channel(8),
            drain_started: false,
        }
    }

    pub(super) async fn run(&mut self) -> Result<Exit> {
        self.feed(Input::Start).await?;
        loop {
            self.publish();
            let life = self.lifecycle.borrow_and_update().clone();
            if !life.is_running() && !self.drain_started {
                self.start_drain();
            }
            let drain_deadline = match life {
                Lifecycle::Draining { deadline } => deadline,
                _ => None,
            };
            let draining = self.drain_started;
            if draining && self.shared.tasks.is_empty() {
                return Ok(self.finish(Exit::Drained).await);
            }
            if drain_deadline.is_some_and(|d| Instant::now() >= d) {
                let abandoned = self.abandon().await;
                return Ok(self.finish(Exit::DeadlineExceeded { abandoned }).await);
            }
            let mut wake = Instant::now() + MAX_TICK;
            if let Some(d) = self.listener.next_deadline() {
                wake = wake.min(d);
            }
            if let Some(d) = drain_deadline {
                wake = wake.min(d);
            }
            tokio::select! {
                _ = self.lifecycle.changed(), if !draining => {}
                Some(input) = self.heartbeats.1.recv() => self.feed(input).await?,
                msg = next_action(&mut self.stream) => match msg {
                    Ok(Some(a)) => self.on_action(a).await,
                    Ok(None) => self.feed(Input::StreamFailed(None)).await?,
                    Err(s) if is_message_too_large(&s) => {
                        tracing::error!(
                            code = ?s.code(),
                            "an assignment exceeded a message-size limit, so the engine cannot deliver that run (it fails it \
                             after a few tries); reopening the stream: {}",
                            s.message()
                        );
                        self.feed(Input::StreamOversized).await?
                    }
                    Err(s) => {
                        tracing::warn!(code = ?s.code(), "assignment stream broke: {}", s.message());
                        self.feed(Input::StreamFailed(Some(s.code()))).await?
                    }
                },
                _ = self.shared.tasks.wait(), if draining => {}
                _ = tokio::time::sleep_until(wake) => self.feed(Input::Tick).await?,
            }
        }
    }

    /// Feeds an input and performs the resulting effects (which may feed more inputs).
    async fn feed(&mut self, input: Input) -> Result<()> {
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            let effects = self.listener.step(input, Instant::now(), rand::random::<f64>());
            for effect in effects {
                if let Some(next) = self.perform(effect).await? {
                    queue.push(next);
                }
            }
        }
        self.publish();
        Ok(())
    }

    async fn perform(&mut self, effect: Effect) -> Result<Option<Input>> {
        let s = &self.shared;
        Ok(match effect {
            Effect::Register => Some(match self.register().await {
                Ok(worker_id) => {
                    tracing::info!(worker_id = %worker_id, name = %s.name, "worker registered");
                    Input::Registered { worker_id }
                }
                Err(status) => {
                    tracing::warn!(code = ?status.code(), "register failed: {}", status.message());
                    Input::RegisterFailed(status.code())
                }
            }),
            Effect::OpenStream { worker_id } => {
                // tonic resolves a server-streaming call only when the engine sends response
                // headers, which it does with the first assignment; so the stream is read by
                // its own task and counts as open once requested (a heartbeat answered with
                // FailedPrecondition reopens it if the engine did not take it).
                let (tx, rx) = mpsc::channel(64);
                let task = tokio::spawn(read_assignments(Arc::clone(&s.engine), worker_id, tx));
                self.stream = Some(AssignmentStream { rx, task });
                tracing::info!("assignment stream requested");
                Some(Input::StreamOpened)
            }
            Effect::CloseStream => {
                if let Some(old) = self.stream.take() {
                    old.task.abort();
                }
                None
            }
            Effect::SendHeartbeat { worker_id } => {
                let engine = Arc::clone(&s.engine);
                let tx = self.heartbeats.0.clone();
                let metrics = s.metrics.clone();
                tokio::spawn(async move {
                    let req = HeartbeatRequest {
                        worker_id,
                        heartbeat_at: Some(now_timestamp()),
                    };
                    let input = match tokio::time::timeout(HEARTBEAT_TIMEOUT, engine.heartbeat(req)).await {
                        Ok(Ok(_)) => Input::HeartbeatOk,
                        Ok(Err(status)) => {
                            tracing::warn!(code = ?status.code(), "heartbeat failed: {}", status.message());
                            Input::HeartbeatFailed(status.code())
                        }
                        Err(_) => Input::HeartbeatFailed(tonic::Code::DeadlineExceeded),
                    };
                    if input != Input::HeartbeatOk {
                        metrics.heartbeat_failed();
                    }
                    let _ = tx.send(input).await;
                });
                None
            }
            Effect::Fatal(why) => {
                return Err(Error::Refused {
                    call: "Dispatcher",
                    status: Box::new(tonic::Status::failed_precondition(why)),
                });
            }
        })
    }

    async fn register(&self) -> std::result::Result<String, tonic::Status> {
        let s = &self.shared;
        let req = WorkerRegisterRequest {
            worker_name: s.name.clone(),
            actions: s.actions.keys().cloned().collect(),
            services: Vec::new(),
            slots: None,
            labels: worker_labels(&s.labels),
            webhook_id: None,
            runtime_info: Some(RuntimeInfo {
                sdk_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                // The engine stores only GO/PYTHON/TYPESCRIPT/RUBY and refuses any other value,
                // UNKNOWN included; a Rust worker leaves it unset and says what it is in `extra`.
                language: None,
                language_version: None,
                os: Some(std::env::consts::OS.to_owned()),
                extra: Some(format!("hatchet-worker (Rust) {}", env!("CARGO_PKG_VERSION"))),
            }),
            slot_config: slot_config(s),
        };
        match tokio::time::timeout(OPEN_TIMEOUT, s.engine.register(req)).await {
            Ok(Ok(r)) => Ok(r.into_inner().worker_id),
            Ok(Err(status)) => Err(status),
            Err(_) => Err(tonic::Status::deadline_exceeded("Register timed out")),
        }
    }

    async fn on_action(&mut self, a: AssignedAction) {
        let assigned_at = Instant::now();
        match ActionType::try_from(a.action_type) {
            Ok(ActionType::StartStepRun) => {
                let shared = Arc::clone(&self.shared);
                let def = shared.actions.get(&a.action_id);
                let invocation = def
                    .is_some_and(|d| d.durable.is_some())
                    .then(|| executor::invocation_of(&a));
                // Listed before anything else runs, so a cancel right behind it finds it.
                let tracked = shared
                    .in_flight
                    .track(&a.task_run_external_id, &a.action_id, invocation);
                // An action this worker does not know costs one slot until the executor fails it.
                let units = def.map_or(1, |d| d.slots);
                let pool = shared.pool_of(def).clone();
                match pool.try_acquire_units(units) {
                    Some(permit) => {
                        self.shared
                            .tasks
                            .spawn(executor::run(shared, a, tracked, permit, assigned_at));
                    }
                    None if shared.is_draining() => {
                        drop(tracked);
                        self.shared
                            .tasks
                            .spawn(async move { executor::hand_back(&shared, &a).await });
                    }
                    // The engine believes a slot is free (e.g. just after re-registering): wait
                    // for one, unless the run is cancelled or the worker starts draining.
                    None => {
                        self.shared.tasks.spawn(async move {
                            let permit = tokio::select! {
                                p = pool.acquire_units(units) => p,
                                _ = tracked.switch.token().cancelled() => None,
                            };
                            match permit {
                                Some(permit) => executor::run(shared, a, tracked, permit, assigned_at).await,
                                None if tracked.switch.reason() == Some(CancelReason::Engine) => {}
                                None => executor::hand_back(&shared, &a).await,
                            }
                        });
                    }
                }
            }
            Ok(ActionType::CancelStepRun) => {
                if self
                    .shared
                    .in_flight
                    .cancel(&a.task_run_external_id, CancelReason::Engine)
                {
                    tracing::info!(task_run = %a.task_run_external_id, "engine cancelled a running task");
                } else {
                    tracing::debug!(task_run = %a.task_run_external_id, "cancel for a task not running here");
                }
            }
            other => tracing::warn!(action_type = ?other, "ignoring an assignment type this worker does not handle"),
        }
    }

    /// Performs the drain the lifecycle announced: no new slots, and the worker paused.
    fn start_drain(&mut self) {
        self.drain_started = true;
        let s = &self.shared;
        s.slots.close();
        s.durable_slots.close();
        s.tasks.close();
        tracing::info!(in_flight = s.tasks.len(), timeout = ?s.drain_timeout, "draining: no new tasks, waiting for running ones");
        // Paused in the engine so nothing new is assigned; off the loop, which must keep
        // heartbeating while the REST call takes its time. The drain waits for it too.
        if let Some(id) = s.worker_id() {
            let shared = Arc::clone(s);
            s.tasks.spawn(async move {
                if let Err(e) = shared.engine.set_paused(id, true).await {
                    tracing::warn!("could not pause the worker in the engine: {e}");
                }
            });
        }
    }

    /// Cancels the remaining tasks so they report FAILED (retryable), and waits for those
    /// reports, keeping heartbeats going meanwhile.
    async fn abandon(&mut self) -> usize {
        let abandoned = self.shared.in_flight.cancel_all(CancelReason::DrainDeadline);
        tracing::warn!(abandoned, "drain deadline passed; abandoning running tasks");
        let until = Instant::now() + ABANDON_REPORT_TIMEOUT;
        while !self.shared.tasks.is_empty() && Instant::now() < until {
            tokio::select! {
                Some(input) = self.heartbeats.1.recv() => { let _ = self.feed(input).await; }
                _ = self.shared.tasks.wait() => {}
                _ = tokio::time::sleep(MAX_TICK) => { let _ = self.feed(Input::Tick).await; }
            }
        }
        abandoned
    }

    async fn finish(&mut self, exit: Exit) -> Exit {
        if let Some(worker_id) = self.shared.worker_id() {
            let unsubscribe = self.shared.engine.unsubscribe(WorkerUnsubscribeRequest { worker_id });
            match tokio::time::timeout(HEARTBEAT_TIMEOUT, unsubscribe).await {
                Ok(Ok(_)) => tracing::info!("unsubscribed from the engine"),
                Ok(Err(s)) => tracing::warn!(code = ?s.code(), "unsubscribe failed: {}", s.message()),
                Err(_) => tracing::warn!("unsubscribe timed out"),
            }
        }
        let _ = self.feed(Input::Shutdown).await;
        tracing::info!(?exit, "worker stopped");
        exit
    }

    /// Publishes the connection's facts (readers apply the readiness rule to them) and counts
    /// the reconnects since the last turn.
    fn publish(&self) {
        let mut reconnected = 0;
        self.shared
            .connection
            .send_modify(|c| reconnected = c.update_from(&self.listener, Instant::now()));
        if reconnected > 0 {
            self.shared.metrics.reconnected(reconnected);
        }
    }
}

/// The slots the worker offers per slot type: its default slots, and its durable slots when
/// it has durable tasks.
fn slot_config(s: &Shared) -> std::collections::HashMap<String, i32> {
    let total = |p: &super::slots::SlotPool| i32::try_from(p.total()).unwrap_or(i32::MAX);
    let mut config = std::collections::HashMap::from([(slot_type(false).to_owned(), total(&s.slots))]);
    if s.durable.is_some() {
        config.insert(slot_type(true).to_owned(), total(&s.durable_slots));
    }
    config
}

/// The assignment stream, read by its own task.
struct AssignmentStream {
    rx: mpsc::Receiver<std::result::Result<AssignedAction, tonic::Status>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AssignmentStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens `ListenV2` and forwards what arrives; the channel closing means the stream ended.
async fn read_assignments(
    engine: Arc<dyn WorkerEngine>,
    worker_id: String,
    tx: mpsc::Sender<std::result::Result<AssignedAction, tonic::Status>>,
) {
    let mut stream = match engine.listen(WorkerListenRequest { worker_id }).await {
        Ok(r) => r.into_inner(),
        Err(status) => {
            let _ = tx.send(Err(status)).await;
            return;
        }
    };
    while let Some(item) = stream.next().await {
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
}

async fn next_action(
    stream: &mut Option<AssignmentStream>,
) -> std::result::Result<Option<AssignedAction>, tonic::Status> {
    match stream {
        Some(s) => s.rx.recv().await.transpose(),
        None => futures::future::pending().await,
    }
}
