//! What a server has received, shared between the server's tasks (which
//! append) and the test (which reads and waits).
//!
//! It keeps what was received; what each server records, and how it answers,
//! is that server's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// Locks `mutex`, recovering the data if a thread panicked while holding it:
/// a test that panicked has already failed, and the others should still see
/// what was recorded.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An append-only record with a count that can be awaited.
#[derive(Debug)]
pub(crate) struct Log<T> {
    items: Mutex<Vec<T>>,
    // Kept beside the vector so that counting and waiting take no lock.
    len: AtomicUsize,
    grew: Notify,
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Self {
            items: Mutex::new(Vec::new()),
            len: AtomicUsize::new(0),
            grew: Notify::new(),
        }
    }
}

impl<T: Clone> Log<T> {
    pub(crate) fn push(&self, item: T) {
        lock(&self.items).push(item);
        // Counted after the push: whoever sees the new count finds the item.
        self.len.fetch_add(1, Ordering::Release);
        self.grew.notify_waiters();
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    pub(crate) fn snapshot(&self) -> Vec<T> {
        lock(&self.items).clone()
    }

    /// Applies `f` to the items under the lock, without cloning them all.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&[T]) -> R) -> R {
        f(&lock(&self.items))
    }

    /// Waits until at least `n` items are recorded; false if `timeout` passed first.
    pub(crate) async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the count is read, so a push in between still wakes us.
            let grew = self.grew.notified();
            tokio::pin!(grew);
            grew.as_mut().enable();
            if self.len() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, grew).await.is_err() {
                return self.len() >= n;
            }
        }
    }
}
