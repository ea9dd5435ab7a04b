//! authbridge patch (vendor/README.md, change 5): a handler's future runs where
//! it is called until it has to wait, and only then becomes a task.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::{Context, Poll, Waker};

/// Polls `fut` once, here, and spawns it as a task only if it is not done.
///
/// Most connect, connect-handler and disconnect futures never wait (they check a
/// token, join rooms, emit): run here, they cost no task — no cell, no trip
/// through the scheduler, no wake-up of the connection's task from another one —
/// and what they send is queued before the transport writes, so it leaves in
/// the same write as what the caller sends.
///
/// A future that returns `Pending` is moved into a task, whose first poll
/// registers the task's waker in place of the no-op one used here (a future
/// registers its waker on every poll that returns `Pending`), so no wake-up is
/// lost. A panic is contained as a task contains it: the future is dropped and
/// the caller goes on.
pub(crate) fn run_or_spawn<F>(fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut fut = Box::pin(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
        Ok(Poll::Ready(())) => {}
        Ok(Poll::Pending) => {
            tokio::spawn(fut);
        }
        Err(_panic) => {
            #[cfg(feature = "tracing")]
            tracing::error!("a handler panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::run_or_spawn;

    #[tokio::test]
    async fn a_future_that_does_not_wait_runs_before_the_call_returns() {
        let done = Arc::new(AtomicUsize::new(0));
        let counter = done.clone();
        run_or_spawn(async move {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_future_that_waits_is_finished_by_a_task() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        run_or_spawn(async move {
            rx.await.unwrap();
            done_tx.send(()).unwrap();
        });
        // Woken through the task's waker, not the no-op one of the first poll.
        tx.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), done_rx)
            .await
            .expect("the task finishes the future")
            .unwrap();
    }

    #[tokio::test]
    async fn a_panic_is_contained() {
        run_or_spawn(async { panic!("a handler's bug") });
        let done = Arc::new(AtomicUsize::new(0));
        let counter = done.clone();
        run_or_spawn(async move {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }
}
