//! The Hatchet engine's gRPC contracts (dispatcher, events, workflows and their `v1`
//! successors), kept wire-identical to the engine so workers written with this crate
//! interoperate with the official SDKs on the same tenant.
//!
//! The contracts are our own `.proto` files under `contracts/`, matching engine v0.104.x
//! in every service, rpc, message, enum, field name, number, type and label;
//! `tests/contract.rs` compares them with the engine's own files.
//!
//! Layout of the generated code:
//!
//! - the package-less engine files (`dispatcher`, `events`, `workflows`) sit at the
//!   crate root, so their gRPC paths carry no prefix (`/Dispatcher/Register`):
//!   [`dispatcher_client::DispatcherClient`], [`events_service_client::EventsServiceClient`],
//!   [`workflow_service_client::WorkflowServiceClient`], messages such as
//!   [`WorkerRegisterRequest`], [`AssignedAction`] and [`StepActionEvent`];
//! - package `v1` sits in [`v1`] (`/v1.AdminService/PutWorkflow`,
//!   `/v1.V1Dispatcher/DurableTask`): [`v1::admin_service_client::AdminServiceClient`],
//!   [`v1::CreateWorkflowVersionRequest`], [`v1::CreateTaskOpts`], ...
//!
//! Servers are generated too (`dispatcher_server`, ...) so tests can stand up a fake engine.

#![forbid(unsafe_code)]

#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/hatchet.rs"));
}

pub use generated::*;

/// The encoded `google.protobuf.FileDescriptorSet` of our contracts (plus the imported
/// well-known types), without source info. Useful for reflection and for comparing our
/// contracts with the engine's.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hatchet_descriptor.bin"));
