//! Task slots as RAII permits: a permit is taken before a task is accepted and moves with
//! it; dropping it frees the slot. Closing the pool stops new work for a drain.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// A fixed number of slots shared by a worker's tasks.
#[derive(Debug, Clone)]
pub struct SlotPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    total: usize,
    semaphore: Arc<Semaphore>,
    used: AtomicUsize,
    idle: Notify,
}

/// The slots one task occupies (its slot cost, usually 1); freed on drop.
#[derive(Debug)]
pub struct SlotPermit {
    pool: Arc<Inner>,
    units: usize,
    _permit: OwnedSemaphorePermit,
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        if self.pool.used.fetch_sub(self.units, Ordering::AcqRel) == self.units {
            self.pool.idle.notify_waiters();
        }
    }
}

/// A task's slot, shared by its executor and its [`Context`](crate::Context): the task may
/// give it back early (`release_slot`), otherwise the executor frees it once the result is
/// reported. Clones of the context that outlive the run never hold it.
#[derive(Debug, Clone)]
pub(crate) struct SharedSlot(Arc<Mutex<Option<SlotPermit>>>);

impl SharedSlot {
    pub(crate) fn new(permit: SlotPermit) -> Self {
        Self(Arc::new(Mutex::new(Some(permit))))
    }

    /// Frees the slot (idempotent).
    pub(crate) fn release(&self) {
        let permit = self.0.lock().expect("slot lock").take();
        drop(permit);
    }
}

impl SlotPool {
    /// A pool of `total` slots.
    pub fn new(total: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                total,
                semaphore: Arc::new(Semaphore::new(total)),
                used: AtomicUsize::new(0),
                idle: Notify::new(),
            }),
        }
    }

    /// Waits for one free slot; `None` once the pool is closed.
    pub async fn acquire(&self) -> Option<SlotPermit> {
        self.acquire_units(1).await
    }

    /// One free slot right now, if any (and the pool is open).
    pub fn try_acquire(&self) -> Option<SlotPermit> {
        self.try_acquire_units(1)
    }

    /// Waits until `units` slots are free together (a task's slot cost); `None` once the pool
    /// is closed or if it could never hold that many.
    pub async fn acquire_units(&self, units: usize) -> Option<SlotPermit> {
        let n = u32::try_from(units).ok().filter(|_| units <= self.inner.total)?;
        let permit = Arc::clone(&self.inner.semaphore).acquire_many_owned(n).await.ok()?;
        Some(self.wrap(permit, units))
    }

    /// `units` free slots right now, if there are (and the pool is open).
    pub fn try_acquire_units(&self, units: usize) -> Option<SlotPermit> {
        let n = u32::try_from(units).ok()?;
        let permit = Arc::clone(&self.inner.semaphore).try_acquire_many_owned(n).ok()?;
        Some(self.wrap(permit, units))
    }

    fn wrap(&self, permit: OwnedSemaphorePermit, units: usize) -> SlotPermit {
        self.inner.used.fetch_add(units, Ordering::AcqRel);
        SlotPermit {
            pool: Arc::clone(&self.inner),
            units,
            _permit: permit,
        }
    }

    /// Slots in the pool.
    pub fn total(&self) -> usize {
        self.inner.total
    }

    /// Slots held by running tasks.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Acquire)
    }

    /// Stops handing out permits; permits already held stay valid.
    pub fn close(&self) {
        self.inner.semaphore.close();
    }

    /// Resolves when no permit is held.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.used() == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn permits_are_counted_and_freed_on_drop() {
        let pool = SlotPool::new(2);
        let a = pool.try_acquire().unwrap();
        let b = pool.try_acquire().unwrap();
        assert_eq!(pool.used(), 2);
        assert!(pool.try_acquire().is_none(), "no third slot");
        drop(a);
        assert_eq!(pool.used(), 1);
        let c = pool.acquire().await.unwrap();
        assert_eq!(pool.used(), 2);
        drop((b, c));
        assert_eq!(pool.used(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_costly_task_holds_its_units_together() {
        let pool = SlotPool::new(4);
        let two = pool.try_acquire_units(2).unwrap();
        let one = pool.try_acquire().unwrap();
        assert_eq!(pool.used(), 3);
        assert!(pool.try_acquire_units(2).is_none(), "one slot left, not two");
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { pool.acquire_units(2).await.map(|p| p.units) }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished());
        drop(one);
        assert_eq!(waiter.await.unwrap(), Some(2));
        drop(two);
        assert_eq!(pool.used(), 0);
        assert!(
            pool.acquire_units(5).await.is_none(),
            "more than the pool holds never comes"
        );
    }

    #[tokio::test]
    async fn a_panicking_holder_still_frees_its_slot() {
        let pool = SlotPool::new(1);
        let permit = pool.try_acquire().unwrap();
        let h = tokio::spawn(async move {
            let _p = permit;
            panic!("handler blew up");
        });
        assert!(h.await.unwrap_err().is_panic());
        assert_eq!(pool.used(), 0);
        assert!(pool.try_acquire().is_some());
    }

    #[test]
    fn a_shared_slot_is_freed_once_by_whichever_side_releases_first() {
        let pool = SlotPool::new(1);
        let slot = SharedSlot::new(pool.try_acquire().unwrap());
        let ctx_side = slot.clone();
        assert_eq!(pool.used(), 1);
        ctx_side.release();
        assert_eq!(pool.used(), 0);
        slot.release();
        assert_eq!(pool.used(), 0, "a second release frees nothing more");
        drop(ctx_side);
        assert!(pool.try_acquire().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn closed_pool_refuses_new_work_and_reports_idle() {
        let pool = SlotPool::new(3);
        let held = pool.try_acquire().unwrap();
        pool.close();
        assert!(pool.try_acquire().is_none());
        assert!(pool.acquire().await.is_none());
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { pool.idle().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished(), "idle must wait for the held slot");
        drop(held);
        waiter.await.unwrap();
    }
}
