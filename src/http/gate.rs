//! The bound on the HTTP API's blocking work: every render, find, expand
//! and tag listing runs on a blocking thread through [`Gate::run`], which
//!
//! - admits at most `max_concurrent_renders` at a time; a request past
//!   that waits in a bounded queue for at most [`QUEUE_WAIT`], then is a
//!   503 naming the limit (so slow `movingMedian`-class work cannot take
//!   every thread, and the tokio blocking pool never grows past the limit);
//! - gives the work a deadline `render_timeout` after the request arrived
//!   (in `Limits::deadline`, which the evaluator checks), and answers a 503
//!   naming `render_timeout` at the deadline whether or not the work has
//!   noticed it yet. The work keeps its slot until it has stopped, so work
//!   that overruns still counts against the limit;
//! - turns a panic in the work into a 500 (our bug, not the client's),
//!   logged with what the request asked for.
//!
//! `/health` and `/metrics` do not pass through here: they run on the
//! async workers, which this keeps free.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use crate::query::eval::QueryError;

/// Requests that may wait for a slot, per slot.
const QUEUE_PER_SLOT: usize = 4;

/// The longest a request waits for a slot before its 503: long enough to
/// ride out a burst of dashboard panels, short enough that a client (or
/// its retry) hears of an overload at once.
pub const QUEUE_WAIT: Duration = Duration::from_secs(1);

pub struct Gate {
    slots: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
    max: usize,
    timeout: Duration,
}

/// A slot held: the work's deadline, and its place among the concurrent
/// ones until dropped. A streamed reply keeps it until the last piece.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    pub deadline: Instant,
    pub timeout: Duration,
}

impl Slot {
    /// `Err(Deadline)` once the deadline has passed.
    pub fn check(&self) -> Result<(), QueryError> {
        if Instant::now() >= self.deadline {
            Err(QueryError::Deadline(self.timeout))
        } else {
            Ok(())
        }
    }
}

impl Gate {
    /// `max` concurrent pieces of work (at least 1), each answered within
    /// `timeout` of its arrival.
    pub fn new(max: usize, timeout: Duration) -> Gate {
        let max = max.max(1);
        Gate {
            slots: Arc::new(Semaphore::new(max)),
            waiting: Arc::new(Semaphore::new(max * QUEUE_PER_SLOT)),
            max,
            timeout,
        }
    }

    /// The concurrency limit: also the size the tokio blocking pool needs.
    pub fn max(&self) -> usize {
        self.max
    }

    /// `render_timeout`.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `work` on a blocking thread once a slot is free, as described
    /// in the module doc. `request` says what was asked (the targets, the
    /// query) for the log if the work panics. Gives back the slot with the
    /// result, for a reply that goes on working after it is returned.
    pub async fn run<T, F>(&self, request: String, work: F) -> Result<(T, Slot), ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Slot) -> Result<T, ApiError> + Send + 'static,
    {
        let arrived = Instant::now();
        let deadline = arrived + self.timeout;
        let busy = || {
            ApiError::Busy(format!(
                "the server is busy: all {} render slots are taken (max_concurrent_renders); \
                 try again shortly",
                self.max
            ))
        };
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let Ok(_queued) = self.waiting.try_acquire() else {
                    return Err(busy());
                };
                let wait_until = deadline.min(arrived + QUEUE_WAIT);
                match tokio::time::timeout_at(wait_until.into(), self.slots.clone().acquire_owned())
                    .await
                {
                    Ok(Ok(p)) => p,
                    _ => return Err(busy()),
                }
            }
        };
        let slot = Slot {
            _permit: permit,
            deadline,
            timeout: self.timeout,
        };
        let task = tokio::task::spawn_blocking(move || {
            let r = catch_unwind(AssertUnwindSafe(|| work(&slot)));
            (r, slot)
        });
        match tokio::time::timeout_at(deadline.into(), task).await {
            Err(_) => Err(QueryError::Deadline(self.timeout).into()),
            Ok(Ok((Ok(r), slot))) => r.map(|v| (v, slot)),
            Ok(Ok((Err(panic), _))) => Err(panicked(&request, &*panic)),
            // Only a cancelled runtime gets here (the closure's panics are
            // caught above).
            Ok(Err(e)) => Err(panicked(&request, &e.to_string())),
        }
    }
}

/// A panic's message, logged with the request: the panic is our bug.
pub fn panicked(request: &str, payload: &(dyn std::any::Any + Send)) -> ApiError {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string());
    tracing::error!(request = %request, panic = %msg, "a request's work panicked (a bug in rollupd); answered 500");
    ApiError::Internal(format!(
        "the server failed on this request (a bug, logged): {msg}"
    ))
}
