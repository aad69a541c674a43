//! Running many small jobs a bounded number at a time.

use std::future::Future;

use tokio::task::JoinSet;

/// Runs `job` on every item, at most `limit` at once (each on the runtime's worker threads),
/// and returns the results in completion order. A panicking job panics the caller.
pub async fn for_each_bounded<T, R, F, Fut>(items: Vec<T>, limit: usize, job: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    let limit = limit.max(1);
    let mut set = JoinSet::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if set.len() >= limit
            && let Some(done) = set.join_next().await
        {
            out.push(unwrap_join(done));
        }
        set.spawn(job(item));
    }
    while let Some(done) = set.join_next().await {
        out.push(unwrap_join(done));
    }
    out
}

fn unwrap_join<R>(done: Result<R, tokio::task::JoinError>) -> R {
    match done {
        Ok(r) => r,
        Err(e) => match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            // Nothing cancels these tasks; a cancelled one means the runtime is shutting down.
            Err(e) => panic!("a migration task did not finish: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::for_each_bounded;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn never_runs_more_than_the_limit_and_runs_every_item() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let out = for_each_bounded((0..40u64).collect(), 3, |i| {
            let (running, peak) = (running.clone(), peak.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                i * 2
            }
        })
        .await;
        let mut out = out;
        out.sort_unstable();
        assert_eq!(out, (0..40u64).map(|i| i * 2).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 3, "peak {}", peak.load(Ordering::SeqCst));
        assert!(peak.load(Ordering::SeqCst) >= 2, "ran one at a time");
    }
}
