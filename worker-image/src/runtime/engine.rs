//! The seam between the runtime and the engine: every call the worker's loop, its executors
//! and its tasks' slot/timeout calls make, one try each (deadlines and retries are the
//! runtime's policy, not the seam's). [`Client`] implements it over gRPC and REST; the tests
//! put an in-memory engine behind it to drive races and outages deterministically.

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use hatchet_proto::v1::{
    CreateWorkflowVersionRequest, CreateWorkflowVersionResponse, DurableTaskRequest, DurableTaskResponse,
};
use hatchet_proto::{
    ActionEventResponse, AssignedAction, GetVersionRequest, GetVersionResponse, HeartbeatRequest, HeartbeatResponse,
    RefreshTimeoutRequest, RefreshTimeoutResponse, ReleaseSlotRequest, ReleaseSlotResponse, RestoreEvictedTaskRequest,
    RestoreEvictedTaskResponse, StepActionEvent, WorkerListenRequest, WorkerRegisterRequest, WorkerRegisterResponse,
    WorkerUnsubscribeRequest, WorkerUnsubscribeResponse,
};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Response, Status};

use crate::client::Client;

/// One try at an engine call, as tonic answers it.
pub(crate) type Reply<'a, T> = BoxFuture<'a, Result<Response<T>, Status>>;

/// The assignment stream of one `ListenV2` call; it ends when the engine closes it.
pub(crate) type Assignments = BoxStream<'static, Result<AssignedAction, Status>>;

/// The engine's side of one `v1.V1Dispatcher/DurableTask` stream.
pub(crate) type DurableResponses = BoxStream<'static, Result<DurableTaskResponse, Status>>;

/// What a worker asks of the engine.
pub(crate) trait WorkerEngine: Send + Sync {
    /// `Dispatcher/GetVersion`.
    fn get_version(&self) -> Reply<'_, GetVersionResponse>;
    /// `v1.AdminService/PutWorkflow`.
    fn put_workflow(&self, req: CreateWorkflowVersionRequest) -> Reply<'_, CreateWorkflowVersionResponse>;
    /// `Dispatcher/Register`.
    fn register(&self, req: WorkerRegisterRequest) -> Reply<'_, WorkerRegisterResponse>;
    /// `Dispatcher/ListenV2`: resolves once the engine answers the call (tonic waits for the
    /// response headers, which the engine sends with its first assignment).
    fn listen(&self, req: WorkerListenRequest) -> Reply<'_, Assignments>;
    /// `Dispatcher/Heartbeat`.
    fn heartbeat(&self, req: HeartbeatRequest) -> Reply<'_, HeartbeatResponse>;
    /// `Dispatcher/SendStepActionEvent`.
    fn send_step_action_event(&self, event: StepActionEvent) -> Reply<'_, ActionEventResponse>;
    /// `Dispatcher/Unsubscribe`.
    fn unsubscribe(&self, req: WorkerUnsubscribeRequest) -> Reply<'_, WorkerUnsubscribeResponse>;
    /// `Dispatcher/ReleaseSlot`.
    fn release_slot(&self, req: ReleaseSlotRequest) -> Reply<'_, ReleaseSlotResponse>;
    /// `Dispatcher/RefreshTimeout`.
    fn refresh_timeout(&self, req: RefreshTimeoutRequest) -> Reply<'_, RefreshTimeoutResponse>;
    /// `v1.V1Dispatcher/DurableTask`: the worker's one stream for its durable tasks' event
    /// logs, fed by `requests`; resolves once the engine answers the call.
    fn durable_task(&self, requests: UnboundedReceiverStream<DurableTaskRequest>) -> Reply<'_, DurableResponses>;
    /// `Dispatcher/RestoreEvictedTask`: queues an evicted durable task again.
    fn restore_evicted_task(&self, req: RestoreEvictedTaskRequest) -> Reply<'_, RestoreEvictedTaskResponse>;
    /// Pauses (or resumes) the worker: REST `PATCH /api/v1/workers/{id}`, the only way the
    /// engine offers to stop assigning to a worker that keeps its stream.
    fn set_paused(&self, worker_id: String, paused: bool) -> BoxFuture<'_, crate::Result<()>>;
}

impl WorkerEngine for Client {
    fn get_version(&self) -> Reply<'_, GetVersionResponse> {
        let mut d = self.engine().dispatcher.clone();
        Box::pin(async move { d.get_version(GetVersionRequest {}).await })
    }

    fn put_workflow(&self, req: CreateWorkflowVersionRequest) -> Reply<'_, CreateWorkflowVersionResponse> {
        let mut a = self.engine().admin.clone();
        Box::pin(async move { a.put_workflow(req).await })
    }

    fn register(&self, req: WorkerRegisterRequest) -> Reply<'_, WorkerRegisterResponse> {
        let mut d = self.engine().dispatcher.clone();
        Box::pin(async move { d.register(req).await })
    }

    fn listen(&self, req: WorkerListenRequest) -> Reply<'_, Assignments> {
        let mut d = self.engine().dispatcher.clone();
        Box::pin(async move {
            let r = d.listen_v2(req).await?;
            Ok(r.map(|s| s.boxed()))
        })
    }

    fn heartbeat(&self, req: HeartbeatRequest) -> Reply<'_, HeartbeatResponse> {
        let mut d = self.engine().dispatcher.clone();
        Box::pin(async move { d.heartbeat(req).await })
    }

    fn send_step_action_event(&self, event: StepActionEvent) -> Reply<'_, ActionEventResponse> {
        let mut d = self.engine().dispatcher.clone();
        Box::pin(async move { d.send_step_action_event(event).await })
    }

    fn unsubscribe(&self, req: WorkerUnsubscribeRequest) -> Reply<'_, WorkerUnsubscribeResponse> {
        let mut d = self.engine().dispatcher.clone();
        Box::pin(async move { d.unsubscribe(req).await })
    }

    fn release_slot(&self, req: ReleaseSlotRequest) -> Reply<'_, ReleaseSlotResponse> {
        let mut d = self.engine().dispatcher.clone();
        Box::pin(async move { d.release_slot(req).await })
    }

    fn refresh_timeout(&self, req: RefreshTimeoutRequest) -> Reply<'_, RefreshTimeoutResponse> {
        let mut d = self.engine().dispatcher.clone();
        Box::pin(async move { d.refresh_timeout(req).await })
    }

    fn durable_task(&self, requests: UnboundedReceiverStream<DurableTaskRequest>) -> Reply<'_, DurableResponses> {
        let mut d = self.engine().durable.clone();
        let request = tonic::Request::new(requests);
        Box::pin(async move {
            let r = d.durable_task(request).await?;
            Ok(r.map(|s| s.boxed()))
        })
    }

    fn restore_evicted_task(&self, req: RestoreEvictedTaskRequest) -> Reply<'_, RestoreEvictedTaskResponse> {
        let mut d = self.engine().dispatcher.clone();
        Box::pin(async move { d.restore_evicted_task(req).await })
    }

    fn set_paused(&self, worker_id: String, paused: bool) -> BoxFuture<'_, crate::Result<()>> {
        Box::pin(async move { self.set_worker_paused(&worker_id, paused).await })
    }
}
