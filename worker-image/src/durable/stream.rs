//! The worker's one `v1.V1Dispatcher/DurableTask` stream, shared by all its durable tasks: a
//! task of its own that (re)connects, registers the worker on it, sends the tasks' requests,
//! routes the engine's answers through [`Pending`], and reports the awaited entries every
//! second (the engine drops completions it pushes while no stream has the task bound, and
//! re-sends them when asked; so the poll is needed for correctness, not only after outages).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hatchet_proto::v1::durable_task_request::Message as Request;
use hatchet_proto::v1::{
    DurableTaskEvictInvocationRequest, DurableTaskRequest, DurableTaskRequestRegisterWorker,
    DurableTaskWorkerStatusRequest,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::pending::{Ack, Completion, EntryKey, Invocation, Pending, Refusal, Routed};
use crate::runtime::{Connection, DurableResponses, WorkerEngine};

/// Pause before reconnecting a broken stream (the official SDKs wait 2–3 s).
const RECONNECT_DELAY: Duration = Duration::from_secs(2);
/// How often the awaited entries are reported while there are any.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// Deadline for opening the stream (the engine answers once the worker registered on it).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for its ack before the attempt gives up on it.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an eviction waits for the engine's acknowledgement.
const EVICTION_TIMEOUT: Duration = Duration::from_secs(30);

/// What the durable tasks ask of the stream's task.
enum Command {
    /// Send `request` for `invocation` and answer with its ack.
    Request {
        invocation: Invocation,
        request: Request,
        reply: oneshot::Sender<Result<Ack, Refusal>>,
    },
    /// Answer once `entry` completes.
    Await {
        entry: EntryKey,
        reply: oneshot::Sender<Result<Completion, Refusal>>,
    },
    /// Evict `invocation` and answer once the engine acknowledged it.
    Evict {
        invocation: Invocation,
        reason: String,
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    /// Send `request`, which the engine does not answer.
    Tell { request: Request },
}

impl Command {
    /// A request whose sender stopped waiting must not be sent late: it would create a log
    /// entry nobody follows.
    fn abandoned(&self) -> bool {
        match self {
            Command::Request { reply, .. } => reply.is_closed(),
            Command::Evict { reply, .. } => reply.is_closed(),
            Command::Await { .. } | Command::Tell { .. } => false,
        }
    }
}

/// A durable task's handle on the stream. Cheap to clone.
#[derive(Clone)]
pub(crate) struct DurableStream {
    commands: mpsc::UnboundedSender<Command>,
}

impl DurableStream {
    /// The handle and the task to run (with [`StreamTask::run`]) once the worker starts.
    pub(crate) fn new() -> (Self, StreamTask) {
        let (commands, rx) = mpsc::unbounded_channel();
        (Self { commands }, StreamTask { commands: rx })
    }

    /// Sends `request` for `invocation` and waits for its ack.
    pub(crate) async fn request(&self, invocation: Invocation, request: Request) -> Result<Ack, Refusal> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Request {
            invocation,
            request,
            reply,
        })?;
        answer(rx, ACK_TIMEOUT, "its request").await
    }

    /// Waits until the engine completes `entry` (as long as it takes: a sleep, an event).
    pub(crate) async fn completion(&self, entry: EntryKey) -> Result<Completion, Refusal> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Await { entry, reply })?;
        rx.await.unwrap_or(Err(Refusal::Disconnected))
    }

    /// Asks the engine to evict `invocation` (free its slot until its wait is satisfied).
    pub(crate) async fn evict(&self, invocation: Invocation, reason: &str) -> Result<(), Refusal> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Evict {
            invocation,
            reason: reason.to_owned(),
            reply,
        })?;
        answer(rx, EVICTION_TIMEOUT, "the eviction").await
    }

    /// Sends `request`, which the engine does not answer.
    pub(crate) fn tell(&self, request: Request) -> Result<(), Refusal> {
        self.command(Command::Tell { request })
    }

    fn command(&self, c: Command) -> Result<(), Refusal> {
        self.commands.send(c).map_err(|_| Refusal::Disconnected)
    }
}

async fn answer<T>(rx: oneshot::Receiver<Result<T, Refusal>>, within: Duration, what: &str) -> Result<T, Refusal> {
    match tokio::time::timeout(within, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(Refusal::Disconnected),
        Err(_) => Err(Refusal::Engine(format!(
            "the engine did not answer {what} within {within:?}"
        ))),
    }
}

/// The stream's task, before it runs.
pub(crate) struct StreamTask {
    commands: mpsc::UnboundedReceiver<Command>,
}

/// An open stream: what to send on it, what comes back, and for which worker it registered.
struct Link {
    out: mpsc::UnboundedSender<DurableTaskRequest>,
    responses: DurableResponses,
    worker_id: String,
}

impl Link {
    fn send(&self, message: Request) -> bool {
        self.out.send(DurableTaskRequest { message: Some(message) }).is_ok()
    }
}

impl StreamTask {
    /// Serves the stream for as long as the worker lives; `on_evicted` stops a run the
    /// engine evicted.
    pub(crate) async fn run(
        mut self,
        engine: Arc<dyn WorkerEngine>,
        mut connection: watch::Receiver<Connection>,
        on_evicted: impl Fn(&Invocation) + Send,
    ) {
        let mut pending = Pending::default();
        let mut link: Option<Link> = None;
        let mut unsent: VecDeque<Command> = VecDeque::new();
        let mut retry_at = Instant::now();
        let mut status = tokio::time::interval(STATUS_INTERVAL);
        status.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let worker_id = connection.borrow().worker_id.clone();
            if link.as_ref().is_some_and(|l| Some(&l.worker_id) != worker_id.as_ref()) {
                tracing::info!("the worker registered again; reopening the durable-task stream");
                link = None;
                pending.disconnected();
            }
            if link.is_none()
                && Instant::now() >= retry_at
                && let Some(id) = worker_id
            {
                match connect(&*engine, id).await {
                    Ok(l) => {
                        tracing::info!("durable-task stream open");
                        l.send(worker_status(&l.worker_id, &pending));
                        while let Some(c) = unsent.pop_front() {
                            perform(c, &l, &mut pending);
                        }
                        link = Some(l);
                    }
                    Err(status) => {
                        tracing::warn!(code = ?status.code(), "could not open the durable-task stream: {}", status.message());
                        retry_at = Instant::now() + RECONNECT_DELAY;
                    }
                }
            }
            tokio::select! {
                command = self.commands.recv() => {
                    let Some(command) = command else { return };
                    match &link {
                        Some(l) => perform(command, l, &mut pending),
                        None => {
                            unsent.retain(|c| !c.abandoned());
                            unsent.push_back(command);
                        }
                    }
                }
                message = next(&mut link) => match message {
                    Some(Ok(r)) => {
                        let Some(message) = r.message else { continue };
                        match pending.route(message, Instant::now()) {
                            Routed::ServerEvicted(invocation) => on_evicted(&invocation),
                            Routed::Registered => tracing::debug!("worker registered on the durable-task stream"),
                            Routed::Done => {}
                        }
                    }
                    end => {
                        match end {
                            Some(Err(status)) => tracing::warn!(code = ?status.code(), "durable-task stream broke: {}", status.message()),
                            _ => tracing::warn!("the engine closed the durable-task stream"),
                        }
                        link = None;
                        pending.disconnected();
                        retry_at = Instant::now() + RECONNECT_DELAY;
                    }
                },
                _ = status.tick() => {
                    pending.expire(Instant::now());
                    if let Some(l) = &link && pending.has_waits() {
                        l.send(worker_status(&l.worker_id, &pending));
                    }
                }
                changed = connection.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep_until(retry_at), if link.is_none() => {}
            }
        }
    }
}

/// Sends what `command` asks on `link`, expecting its answer first so none is missed.
fn perform(command: Command, link: &Link, pending: &mut Pending) {
    match command {
        Command::Request {
            invocation,
            request,
            reply,
        } => {
            if reply.is_closed() {
                return;
            }
            pending.expect_ack(invocation, reply);
            link.send(request);
        }
        Command::Await { entry, reply } => {
            pending.await_entry(entry, reply);
            // Asks at once for a completion the engine may have pushed before the task was
            // bound to this stream.
            link.send(worker_status(&link.worker_id, pending));
        }
        Command::Evict {
            invocation,
            reason,
            reply,
        } => {
            if reply.is_closed() {
                return;
            }
            let request = Request::EvictInvocation(DurableTaskEvictInvocationRequest {
                invocation_count: invocation.count,
                durable_task_external_id: invocation.task.clone(),
                reason: Some(reason),
            });
            pending.expect_eviction(invocation, reply);
            link.send(request);
        }
        Command::Tell { request } => {
            link.send(request);
        }
    }
}

fn worker_status(worker_id: &str, pending: &Pending) -> Request {
    Request::WorkerStatus(DurableTaskWorkerStatusRequest {
        worker_id: worker_id.to_owned(),
        waiting_entries: pending.awaited(),
    })
}

/// Opens the stream and registers the worker on it; the engine answers the call when it
/// answers the registration.
async fn connect(engine: &dyn WorkerEngine, worker_id: String) -> Result<Link, tonic::Status> {
    let (out, rx) = mpsc::unbounded_channel();
    let register = Request::RegisterWorker(DurableTaskRequestRegisterWorker {
        worker_id: worker_id.clone(),
    });
    let _ = out.send(DurableTaskRequest {
        message: Some(register),
    });
    let call = engine.durable_task(UnboundedReceiverStream::new(rx));
    let responses = match tokio::time::timeout(CONNECT_TIMEOUT, call).await {
        Ok(r) => r?.into_inner(),
        Err(_) => {
            return Err(tonic::Status::deadline_exceeded(
                "opening the durable-task stream timed out",
            ));
        }
    };
    Ok(Link {
        out,
        responses,
        worker_id,
    })
}

async fn next(link: &mut Option<Link>) -> Option<Result<hatchet_proto::v1::DurableTaskResponse, tonic::Status>> {
    match link {
        Some(l) => l.responses.next().await,
        None => futures::future::pending().await,
    }
}
