//! The Rust paths and gRPC service names other crates rely on.

use hatchet_proto::{
    AssignedAction, StepActionEvent, WorkerRegisterRequest,
    dispatcher_client::DispatcherClient,
    dispatcher_server,
    events_service_client::EventsServiceClient,
    events_service_server,
    v1::{self, admin_service_client::AdminServiceClient, v1_dispatcher_client::V1DispatcherClient},
    workflow_service_client::WorkflowServiceClient,
    workflow_service_server,
};
use prost::Message as _;
use tonic::transport::Channel;

#[test]
fn service_names_carry_the_engine_packages() {
    assert_eq!(dispatcher_server::SERVICE_NAME, "Dispatcher");
    assert_eq!(events_service_server::SERVICE_NAME, "EventsService");
    assert_eq!(workflow_service_server::SERVICE_NAME, "WorkflowService");
    assert_eq!(v1::admin_service_server::SERVICE_NAME, "v1.AdminService");
    assert_eq!(v1::v1_dispatcher_server::SERVICE_NAME, "v1.V1Dispatcher");
}

#[test]
fn clients_and_messages_are_where_expected() {
    fn client<T>() {}
    client::<DispatcherClient<Channel>>();
    client::<EventsServiceClient<Channel>>();
    client::<WorkflowServiceClient<Channel>>();
    client::<AdminServiceClient<Channel>>();
    client::<V1DispatcherClient<Channel>>();

    let register = WorkerRegisterRequest {
        worker_name: "w".into(),
        actions: vec!["wf:task".into()],
        slot_config: [("default".to_owned(), 100)].into(),
        ..Default::default()
    };
    let decoded = WorkerRegisterRequest::decode(register.encode_to_vec().as_slice()).unwrap();
    assert_eq!(decoded, register);

    let _ = (AssignedAction::default(), StepActionEvent::default());
    let _ = v1::CreateWorkflowVersionRequest {
        tasks: vec![v1::CreateTaskOpts::default()],
        ..Default::default()
    };
}
