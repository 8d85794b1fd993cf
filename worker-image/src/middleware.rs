//! Hooks around every task a worker runs (the official SDKs' middleware): each middleware gets
//! the task's [`Context`] and the rest of the chain, so it can act before the handler (auth,
//! a span, a timer), refuse to run it, and see or change its result afterwards. Middleware
//! runs inside the attempt, so its panics, errors and cancellation are the task's.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::context::Context;
use crate::workflow::{Handler, TaskError};

/// One hook around every task of a worker. Closures `Fn(Context, Next) -> impl Future` are
/// middleware too.
pub trait Middleware: Send + Sync + 'static {
    /// Runs around the task: call `next.run(ctx)` to go on to the next middleware and then
    /// the handler, or return without calling it to refuse the run.
    fn call(&self, ctx: Context, next: Next) -> BoxFuture<'static, Result<Value, TaskError>>;
}

impl<F, Fut> Middleware for F
where
    F: Fn(Context, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
{
    fn call(&self, ctx: Context, next: Next) -> BoxFuture<'static, Result<Value, TaskError>> {
        Box::pin(self(ctx, next))
    }
}

/// A worker's middleware, outermost first.
pub(crate) type Chain = Arc<[Arc<dyn Middleware>]>;

/// The rest of the chain after the current middleware: the next ones, then the handler.
pub struct Next {
    chain: Chain,
    position: usize,
    handler: Handler,
}

impl Next {
    /// The whole chain in front of `handler`.
    pub(crate) fn new(chain: Chain, handler: Handler) -> Self {
        Self {
            chain,
            position: 0,
            handler,
        }
    }

    /// Runs the rest of the chain and the handler; their result (the task's output as JSON).
    pub fn run(self, ctx: Context) -> BoxFuture<'static, Result<Value, TaskError>> {
        match self.chain.get(self.position).cloned() {
            Some(middleware) => {
                let next = Self {
                    position: self.position + 1,
                    ..self
                };
                middleware.call(ctx, next)
            }
            None => (self.handler)(ctx),
        }
    }
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("remaining", &(self.chain.len() - self.position))
            .finish()
    }
}
