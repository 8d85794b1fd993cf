//! Who waits for what on the durable-task stream: the pure routing of the engine's answers to
//! the requests and log entries they belong to. The engine answers a request with an ack
//! keyed only by (task, invocation), so each invocation has at most one request awaiting its
//! ack; the log entries it creates complete later, keyed by (task, invocation, branch, node),
//! possibly before anyone awaits them, more than once, or after a reconnect.

use std::collections::HashMap;
use std::time::Duration;

use hatchet_proto::v1::{
    DurableEventLogEntryRef, DurableTaskAwaitedCompletedEntry, DurableTaskErrorType, durable_task_response::Message,
};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How long a completion nobody awaits yet is kept (it may arrive just before its ack is read).
const BUFFER_TTL: Duration = Duration::from_secs(10);

/// One invocation of one durable task: the engine's unit of acks and evictions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Invocation {
    pub(crate) task: String,
    pub(crate) count: i32,
}

/// One entry of a durable task's event log.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct EntryKey {
    pub(crate) invocation: Invocation,
    pub(crate) branch: i64,
    pub(crate) node: i64,
}

impl EntryKey {
    fn from_ref(r: &DurableEventLogEntryRef) -> Self {
        Self {
            invocation: Invocation {
                task: r.durable_task_external_id.clone(),
                count: r.invocation_count,
            },
            branch: r.branch_id,
            node: r.node_id,
        }
    }

    pub(crate) fn to_awaited(&self) -> DurableTaskAwaitedCompletedEntry {
        DurableTaskAwaitedCompletedEntry {
            durable_task_external_id: self.invocation.task.clone(),
            branch_id: self.branch,
            node_id: self.node,
            invocation_count: self.invocation.count,
        }
    }
}

/// What the engine acknowledged a request with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ack {
    /// A memo entry: whether it existed, and its stored result if it has one.
    Memo {
        entry: EntryKey,
        existed: bool,
        result: Option<Vec<u8>>,
    },
    /// A wait entry, to be completed when its conditions hold.
    Wait { entry: EntryKey },
    /// One run entry per child, in request order, with the child's run id.
    Runs { entries: Vec<(EntryKey, String)> },
}

/// A log entry the engine satisfied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Completion {
    pub(crate) payload: Vec<u8>,
    /// The entry failed (a child run that failed): the engine's message.
    pub(crate) failure: Option<String>,
}

/// Why a request or a wait got no answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    /// The request differs from what the log holds at that node: the code changed.
    NonDeterminism { node: i64, message: String },
    /// The engine answered with an error.
    Engine(String),
    /// The stream broke before the answer came (the request may or may not have been taken).
    Disconnected,
    /// The engine evicted the invocation: it will run again from the start elsewhere or later.
    Evicted,
}

type Reply<T> = oneshot::Sender<Result<T, Refusal>>;

/// What the stream's reader must do after routing a message.
#[derive(Debug, PartialEq)]
pub(crate) enum Routed {
    /// Nothing more.
    Done,
    /// The engine evicted this invocation: stop its run here without reporting it.
    ServerEvicted(Invocation),
    /// The engine confirmed the worker's registration on the stream.
    Registered,
}

/// The requests and waits in flight on one worker's durable-task stream.
#[derive(Default)]
pub(crate) struct Pending {
    acks: HashMap<Invocation, Reply<Ack>>,
    evictions: HashMap<Invocation, Reply<()>>,
    waits: HashMap<EntryKey, Reply<Completion>>,
    unclaimed: HashMap<EntryKey, (Completion, Instant)>,
}

impl Pending {
    /// Awaits the ack of the request about to be sent for `invocation`. A second request of
    /// the same invocation would make both acks ambiguous, so it is refused.
    pub(crate) fn expect_ack(&mut self, invocation: Invocation, reply: Reply<Ack>) {
        if self.acks.get(&invocation).is_some_and(|r| !r.is_closed()) {
            let _ = reply.send(Err(Refusal::Engine(
                "another request of this invocation is still awaiting its answer".into(),
            )));
            return;
        }
        self.acks.insert(invocation, reply);
    }

    /// Awaits the engine's acknowledgement of an eviction of `invocation`.
    pub(crate) fn expect_eviction(&mut self, invocation: Invocation, reply: Reply<()>) {
        self.evictions.insert(invocation, reply);
    }

    /// Awaits the completion of `entry`; answered at once if it already arrived.
    pub(crate) fn await_entry(&mut self, entry: EntryKey, reply: Reply<Completion>) {
        match self.unclaimed.remove(&entry) {
            Some((c, _)) => {
                let _ = reply.send(Ok(c));
            }
            None => {
                self.waits.insert(entry, reply);
            }
        }
    }

    /// Whether any entry is awaited (the worker then reports them, so the engine re-sends
    /// completions it pushed while nobody listened).
    pub(crate) fn has_waits(&self) -> bool {
        !self.waits.is_empty()
    }

    /// The entries awaited now, for `worker_status`.
    pub(crate) fn awaited(&self) -> Vec<DurableTaskAwaitedCompletedEntry> {
        self.waits.keys().map(EntryKey::to_awaited).collect()
    }

    /// Routes one message from the engine to whoever awaits it.
    pub(crate) fn route(&mut self, message: Message, now: Instant) -> Routed {
        match message {
            Message::RegisterWorker(_) => return Routed::Registered,
            Message::MemoAck(m) => {
                if let Some(r) = m.r#ref {
                    let entry = EntryKey::from_ref(&r);
                    self.ack(
                        entry.invocation.clone(),
                        Ack::Memo {
                            entry,
                            existed: m.memo_already_existed,
                            result: m.memo_result_payload,
                        },
                    );
                }
            }
            Message::WaitForAck(w) => {
                if let Some(r) = w.r#ref {
                    let entry = EntryKey::from_ref(&r);
                    self.ack(entry.invocation.clone(), Ack::Wait { entry });
                }
            }
            Message::TriggerRunsAck(t) => {
                let invocation = Invocation {
                    task: t.durable_task_external_id,
                    count: t.invocation_count,
                };
                let entries = t
                    .run_entries
                    .into_iter()
                    .map(|e| {
                        let key = EntryKey {
                            invocation: invocation.clone(),
                            branch: e.branch_id,
                            node: e.node_id,
                        };
                        (key, e.workflow_run_external_id)
                    })
                    .collect();
                self.ack(invocation, Ack::Runs { entries });
            }
            Message::EntryCompleted(c) => {
                if let Some(r) = c.r#ref {
                    let completion = Completion {
                        failure: c
                            .is_failure
                            .then(|| c.error_message.unwrap_or_else(|| "the entry failed".into())),
                        payload: c.payload,
                    };
                    self.complete(EntryKey::from_ref(&r), completion, now);
                }
            }
            Message::EvictionAck(e) => {
                let invocation = Invocation {
                    task: e.durable_task_external_id,
                    count: e.invocation_count,
                };
                if let Some(reply) = self.evictions.remove(&invocation) {
                    let _ = reply.send(Ok(()));
                }
            }
            Message::ServerEvict(e) => {
                let invocation = Invocation {
                    task: e.durable_task_external_id,
                    count: e.invocation_count,
                };
                tracing::info!(task_run = %invocation.task, invocation = invocation.count, reason = %e.reason,
                    "the engine evicted a durable task");
                self.forget_up_to(&invocation);
                return Routed::ServerEvicted(invocation);
            }
            Message::Error(e) => {
                let refusal = match DurableTaskErrorType::try_from(e.error_type) {
                    Ok(DurableTaskErrorType::Nondeterminism) => Refusal::NonDeterminism {
                        node: e.r#ref.as_ref().map_or(0, |r| r.node_id),
                        message: e.error_message,
                    },
                    _ => Refusal::Engine(e.error_message),
                };
                if let Some(r) = e.r#ref {
                    let entry = EntryKey::from_ref(&r);
                    if let Some(reply) = self.acks.remove(&entry.invocation) {
                        let _ = reply.send(Err(refusal.clone()));
                    }
                    if let Some(reply) = self.evictions.remove(&entry.invocation) {
                        let _ = reply.send(Err(refusal.clone()));
                    }
                    if let Some(reply) = self.waits.remove(&entry) {
                        let _ = reply.send(Err(refusal));
                    }
                }
            }
        }
        Routed::Done
    }

    fn ack(&mut self, invocation: Invocation, ack: Ack) {
        match self.acks.remove(&invocation) {
            Some(reply) => {
                let _ = reply.send(Ok(ack));
            }
            None => tracing::debug!(task_run = %invocation.task, "an ack nobody awaits (its request gave up)"),
        }
    }

    fn complete(&mut self, entry: EntryKey, completion: Completion, now: Instant) {
        match self.waits.remove(&entry) {
            Some(reply) if !reply.is_closed() => {
                let _ = reply.send(Ok(completion));
            }
            // Nobody awaits it yet (its ack is still on the way) or any more (a re-delivery).
            _ => {
                self.unclaimed.insert(entry, (completion, now));
            }
        }
    }

    /// Drops what belongs to `invocation` and the task's earlier invocations: an evicted
    /// invocation gets no more answers.
    fn forget_up_to(&mut self, invocation: &Invocation) {
        let stale = |i: &Invocation| i.task == invocation.task && i.count <= invocation.count;
        for (_, reply) in extract(&mut self.acks, |i| stale(i)) {
            let _ = reply.send(Err(Refusal::Evicted));
        }
        for (_, reply) in extract(&mut self.waits, |e| stale(&e.invocation)) {
            let _ = reply.send(Err(Refusal::Evicted));
        }
        self.unclaimed.retain(|e, _| !stale(&e.invocation));
    }

    /// The stream broke: requests awaiting an answer fail (sending them again could create a
    /// second log entry), waits stay (the engine re-sends their completions on request).
    pub(crate) fn disconnected(&mut self) {
        for (_, reply) in self.acks.drain() {
            let _ = reply.send(Err(Refusal::Disconnected));
        }
        for (_, reply) in self.evictions.drain() {
            let _ = reply.send(Err(Refusal::Disconnected));
        }
    }

    /// Drops waits whose waiter is gone (its run ended) and unclaimed completions past their time.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.waits.retain(|_, r| !r.is_closed());
        self.acks.retain(|_, r| !r.is_closed());
        self.evictions.retain(|_, r| !r.is_closed());
        self.unclaimed
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < BUFFER_TTL);
    }
}

fn extract<K: Clone + Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>, take: impl Fn(&K) -> bool) -> Vec<(K, V)> {
    let keys: Vec<K> = map.keys().filter(|k| take(k)).cloned().collect();
    keys.into_iter()
        .filter_map(|k| map.remove(&k).map(|v| (k, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use hatchet_proto::v1::{
        DurableTaskErrorResponse, DurableTaskEventLogEntryCompletedResponse, DurableTaskEventTriggerRunsAckResponse,
        DurableTaskEventWaitForAckResponse, DurableTaskRunAckEntry, DurableTaskServerEvictNotice,
    };

    use super::*;

    fn inv(task: &str, count: i32) -> Invocation {
        Invocation {
            task: task.into(),
            count,
        }
    }

    fn entry(task: &str, count: i32, node: i64) -> EntryKey {
        EntryKey {
            invocation: inv(task, count),
            branch: 1,
            node,
        }
    }

    fn r(task: &str, count: i32, node: i64) -> Option<DurableEventLogEntryRef> {
        Some(DurableEventLogEntryRef {
            durable_task_external_id: task.into(),
            invocation_count: count,
            branch_id: 1,
            node_id: node,
        })
    }

    fn completed(task: &str, count: i32, node: i64, payload: &str) -> Message {
        Message::EntryCompleted(DurableTaskEventLogEntryCompletedResponse {
            r#ref: r(task, count, node),
            payload: payload.as_bytes().to_vec(),
            is_failure: false,
            error_message: None,
        })
    }

    #[test]
    fn an_ack_reaches_the_request_of_its_invocation_only() {
        let mut p = Pending::default();
        let (a_tx, mut a_rx) = oneshot::channel();
        let (b_tx, mut b_rx) = oneshot::channel();
        p.expect_ack(inv("a", 1), a_tx);
        p.expect_ack(inv("b", 1), b_tx);
        let ack = Message::WaitForAck(DurableTaskEventWaitForAckResponse { r#ref: r("b", 1, 3) });
        assert_eq!(p.route(ack, Instant::now()), Routed::Done);
        assert_eq!(
            b_rx.try_recv().unwrap(),
            Ok(Ack::Wait {
                entry: entry("b", 1, 3)
            })
        );
        assert!(a_rx.try_recv().is_err(), "a's request is still unanswered");
    }

    #[test]
    fn a_second_request_of_one_invocation_is_refused_while_the_first_awaits() {
        let mut p = Pending::default();
        let (first, _first_rx) = oneshot::channel();
        let (second, mut second_rx) = oneshot::channel();
        p.expect_ack(inv("a", 1), first);
        p.expect_ack(inv("a", 1), second);
        assert!(matches!(second_rx.try_recv().unwrap(), Err(Refusal::Engine(_))));
    }

    #[test]
    fn a_completion_before_its_waiter_is_kept_then_handed_over() {
        let mut p = Pending::default();
        let now = Instant::now();
        p.route(completed("a", 1, 1, "{}"), now);
        let (tx, mut rx) = oneshot::channel();
        p.await_entry(entry("a", 1, 1), tx);
        assert_eq!(rx.try_recv().unwrap().unwrap().payload, b"{}");
        assert!(!p.has_waits());
    }

    #[test]
    fn unclaimed_completions_expire() {
        let mut p = Pending::default();
        let now = Instant::now();
        p.route(completed("a", 1, 1, "{}"), now);
        p.expire(now + BUFFER_TTL);
        let (tx, mut rx) = oneshot::channel();
        p.await_entry(entry("a", 1, 1), tx);
        assert!(rx.try_recv().is_err(), "the old completion was dropped");
        assert_eq!(p.awaited(), vec![entry("a", 1, 1).to_awaited()]);
    }

    #[test]
    fn a_failed_entry_carries_the_engine_message() {
        let mut p = Pending::default();
        let (tx, mut rx) = oneshot::channel();
        p.await_entry(entry("a", 1, 2), tx);
        let msg = Message::EntryCompleted(DurableTaskEventLogEntryCompletedResponse {
            r#ref: r("a", 1, 2),
            payload: Vec::new(),
            is_failure: true,
            error_message: Some("child failed".into()),
        });
        p.route(msg, Instant::now());
        assert_eq!(rx.try_recv().unwrap().unwrap().failure.as_deref(), Some("child failed"));
    }

    #[test]
    fn runs_ack_lists_entries_in_request_order() {
        let mut p = Pending::default();
        let (tx, mut rx) = oneshot::channel();
        p.expect_ack(inv("a", 2), tx);
        let ack = Message::TriggerRunsAck(DurableTaskEventTriggerRunsAckResponse {
            durable_task_external_id: "a".into(),
            invocation_count: 2,
            run_entries: vec![
                DurableTaskRunAckEntry {
                    node_id: 4,
                    branch_id: 1,
                    workflow_run_external_id: "r4".into(),
                },
                DurableTaskRunAckEntry {
                    node_id: 5,
                    branch_id: 1,
                    workflow_run_external_id: "r5".into(),
                },
            ],
        });
        p.route(ack, Instant::now());
        let Ok(Ack::Runs { entries }) = rx.try_recv().unwrap() else {
            panic!("a runs ack")
        };
        assert_eq!(
            entries,
            vec![(entry("a", 2, 4), "r4".into()), (entry("a", 2, 5), "r5".into())]
        );
    }

    #[test]
    fn non_determinism_fails_the_request_with_the_node() {
        let mut p = Pending::default();
        let (tx, mut rx) = oneshot::channel();
        p.expect_ack(inv("a", 2), tx);
        let err = Message::Error(DurableTaskErrorResponse {
            r#ref: r("a", 2, 1),
            error_type: DurableTaskErrorType::Nondeterminism as i32,
            error_message: "expected sleep:30s".into(),
        });
        p.route(err, Instant::now());
        assert_eq!(
            rx.try_recv().unwrap(),
            Err(Refusal::NonDeterminism {
                node: 1,
                message: "expected sleep:30s".into()
            })
        );
    }

    #[test]
    fn a_server_eviction_ends_that_invocation_and_earlier_ones_only() {
        let mut p = Pending::default();
        let (old, mut old_rx) = oneshot::channel();
        let (cur, mut cur_rx) = oneshot::channel();
        let (next, mut next_rx) = oneshot::channel();
        let (other, mut other_rx) = oneshot::channel();
        p.await_entry(entry("a", 1, 1), old);
        p.await_entry(entry("a", 2, 1), cur);
        p.await_entry(entry("a", 3, 1), next);
        p.await_entry(entry("b", 1, 1), other);
        let evict = Message::ServerEvict(DurableTaskServerEvictNotice {
            durable_task_external_id: "a".into(),
            invocation_count: 2,
            reason: "stale".into(),
        });
        assert_eq!(p.route(evict, Instant::now()), Routed::ServerEvicted(inv("a", 2)));
        assert_eq!(old_rx.try_recv().unwrap(), Err(Refusal::Evicted));
        assert_eq!(cur_rx.try_recv().unwrap(), Err(Refusal::Evicted));
        assert!(next_rx.try_recv().is_err(), "a later invocation keeps waiting");
        assert!(other_rx.try_recv().is_err(), "another task keeps waiting");
    }

    #[test]
    fn a_disconnect_fails_requests_and_keeps_waits() {
        let mut p = Pending::default();
        let (ack, mut ack_rx) = oneshot::channel();
        let (wait, mut wait_rx) = oneshot::channel();
        p.expect_ack(inv("a", 1), ack);
        p.await_entry(entry("b", 1, 1), wait);
        p.disconnected();
        assert_eq!(ack_rx.try_recv().unwrap(), Err(Refusal::Disconnected));
        assert!(wait_rx.try_recv().is_err());
        assert_eq!(p.awaited().len(), 1, "the wait is reported after the reconnect");
        p.route(completed("b", 1, 1, "{\"x\":1}"), Instant::now());
        assert!(wait_rx.try_recv().unwrap().is_ok());
    }

    #[test]
    fn a_wait_whose_run_ended_is_dropped() {
        let mut p = Pending::default();
        let (tx, rx) = oneshot::channel();
        p.await_entry(entry("a", 1, 1), tx);
        drop(rx);
        p.expire(Instant::now());
        assert!(!p.has_waits());
    }
}
