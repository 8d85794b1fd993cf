//! Reading the engine's idempotency refusals: `ALREADY_EXISTS` with an
//! `IdempotencyCollisionError` (one trigger) or a `BulkTriggerIdempotencyCollisionError`
//! (a bulk trigger) in the gRPC status details, turned into [`Error::Duplicate`].

use hatchet_proto::v1::{BulkTriggerIdempotencyCollisionError, IdempotencyCollisionError};
use prost::Message;

use crate::Error;

/// `google.rpc.Status`, the envelope of a gRPC status's details (a wire contract).
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// `e` as [`Error::Duplicate`] when it is the engine's idempotency refusal; `e` unchanged
/// otherwise.
pub(crate) fn or_duplicate(e: Error) -> Error {
    let Error::Refused { status, .. } = &e else {
        return e;
    };
    if status.code() != tonic::Code::AlreadyExists {
        return e;
    }
    let Ok(envelope) = RpcStatus::decode(status.details()) else {
        return e;
    };
    let mut existing_run_ids = Vec::new();
    let mut started_run_ids = Vec::new();
    for detail in &envelope.details {
        if detail.type_url.ends_with("/v1.BulkTriggerIdempotencyCollisionError") {
            if let Ok(bulk) = BulkTriggerIdempotencyCollisionError::decode(detail.value.as_slice()) {
                existing_run_ids.extend(bulk.collisions.into_iter().map(|c| c.existing_run_external_id));
                started_run_ids.extend(bulk.successful_workflow_run_external_ids);
            }
        } else if detail.type_url.ends_with("/v1.IdempotencyCollisionError")
            && let Ok(one) = IdempotencyCollisionError::decode(detail.value.as_slice())
        {
            existing_run_ids.push(one.existing_run_external_id);
        }
    }
    if existing_run_ids.is_empty() {
        return e;
    }
    Error::Duplicate {
        existing_run_ids,
        started_run_ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: tonic::Code, details: Vec<prost_types::Any>) -> Error {
        let envelope = RpcStatus {
            code: code as i32,
            message: "idempotency key collision".into(),
            details,
        };
        let status = tonic::Status::with_details(code, "idempotency key collision", envelope.encode_to_vec().into());
        Error::Refused {
            call: "TriggerWorkflowRun",
            status: Box::new(status),
        }
    }

    fn any(name: &str, m: &impl Message) -> prost_types::Any {
        prost_types::Any {
            type_url: format!("type.googleapis.com/v1.{name}"),
            value: m.encode_to_vec(),
        }
    }

    #[test]
    fn a_collision_names_the_run_holding_the_key() {
        let one = IdempotencyCollisionError {
            existing_run_external_id: "run-1".into(),
            colliding_run_external_id: String::new(),
        };
        let e = or_duplicate(refused(
            tonic::Code::AlreadyExists,
            vec![any("IdempotencyCollisionError", &one)],
        ));
        match e {
            Error::Duplicate {
                existing_run_ids,
                started_run_ids,
            } => {
                assert_eq!(existing_run_ids, ["run-1"]);
                assert!(started_run_ids.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bulk_collision_says_which_runs_started() {
        let bulk = BulkTriggerIdempotencyCollisionError {
            successful_workflow_run_external_ids: vec!["new-1".into(), "new-2".into()],
            collisions: vec![IdempotencyCollisionError {
                existing_run_external_id: "old".into(),
                colliding_run_external_id: "refused".into(),
            }],
        };
        let e = or_duplicate(refused(
            tonic::Code::AlreadyExists,
            vec![any("BulkTriggerIdempotencyCollisionError", &bulk)],
        ));
        assert!(
            matches!(&e, Error::Duplicate { existing_run_ids, started_run_ids }
                if existing_run_ids == &["old"] && started_run_ids == &["new-1", "new-2"]),
            "{e:?}"
        );
    }

    #[test]
    fn other_refusals_pass_through() {
        assert!(matches!(
            or_duplicate(refused(tonic::Code::AlreadyExists, Vec::new())),
            Error::Refused { .. }
        ));
        let one = IdempotencyCollisionError::default();
        assert!(matches!(
            or_duplicate(refused(
                tonic::Code::InvalidArgument,
                vec![any("IdempotencyCollisionError", &one)]
            )),
            Error::Refused { .. }
        ));
        assert!(matches!(or_duplicate(Error::Shutdown), Error::Shutdown));
    }
}
