//! Group commit: jobs that arrive while one batch runs wait and run together in the next
//! batch, so a burst of admissions pays for one transaction (and one WAL sync), not one each.
//!
//! No thread or task of its own: the first caller leads (runs a batch on its own task); when
//! its batch is done it hands the lead to the oldest waiting caller, whose job then heads the
//! next batch. A caller never waits for more than the batch it is in plus the one before it.

use std::sync::Mutex;

use tokio::sync::oneshot;

/// The most jobs one batch takes, so one transaction (and the latency of its jobs) stays short.
pub const MAX_BATCH: usize = 64;

/// What a waiting caller is told.
enum Turn<J, R> {
    /// Its job ran in someone else's batch: here is its result.
    Done(R),
    /// The lead is its: its job (given back) heads the next batch.
    Lead(J),
}

struct Waiting<J, R> {
    job: J,
    turn: oneshot::Sender<Turn<J, R>>,
}

struct Queue<J, R> {
    waiting: Vec<Waiting<J, R>>,
    /// Whether some caller is running a batch (or has been handed the lead).
    leading: bool,
}

/// Batches jobs of type `J` with results `R`.
pub struct GroupCommit<J, R> {
    queue: Mutex<Queue<J, R>>,
}

impl<J, R> Default for GroupCommit<J, R> {
    fn default() -> Self {
        GroupCommit { queue: Mutex::new(Queue { waiting: Vec::new(), leading: false }) }
    }
}

impl<J, R> std::fmt::Debug for GroupCommit<J, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

/// Gives up the lead however the batch ends (a panic in `exec` included), so callers never
/// wait for a leader that is gone.
struct Lead<'a, J, R> {
    group: &'a GroupCommit<J, R>,
}

impl<J, R> Drop for Lead<'_, J, R> {
    fn drop(&mut self) {
        let mut q = self.group.lock();
        // The oldest caller still waiting leads next; one that went away (its request was
        // dropped) is skipped, and its job with it: nobody waits for that result.
        while !q.waiting.is_empty() {
            let w = q.waiting.remove(0);
            if w.turn.send(Turn::Lead(w.job)).is_ok() {
                return;
            }
        }
        q.leading = false;
    }
}

/// A caller waiting for its turn. Dropped before its answer is read (the request went away),
/// it passes on a lead it was handed, so the queue never waits for a leader that is gone.
struct Wait<'a, J, R> {
    group: &'a GroupCommit<J, R>,
    rx: Option<oneshot::Receiver<Turn<J, R>>>,
}

impl<J, R> Drop for Wait<'_, J, R> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if let Ok(Turn::Lead(_)) = rx.try_recv() {
                drop(Lead { group: self.group });
            }
        }
    }
}

impl<J, R> GroupCommit<J, R> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<J, R>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<J: Clone, R> GroupCommit<J, R> {
    /// Runs `job` in a batch: `exec` gets the batch's jobs (this one among them) and returns
    /// one result per job, in order.
    pub async fn run(&self, job: J, exec: impl Fn(Vec<J>) -> Vec<R>) -> R {
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut q = self.lock();
            if q.leading {
                q.waiting.push(Waiting { job: job.clone(), turn: tx });
                None
            } else {
                q.leading = true;
                Some(job.clone())
            }
        };
        let own = match lead {
            Some(own) => own,
            None => {
                let mut wait = Wait { group: self, rx: Some(rx) };
                let turn = wait.rx.as_mut().expect("set above").await;
                wait.rx = None;
                match turn {
                    Ok(Turn::Done(r)) => return r,
                    Ok(Turn::Lead(own)) => own,
                    // The leader's batch failed to finish (it panicked): run alone.
                    Err(_) => {
                        return exec(vec![job]).pop().expect("exec returns one result per job");
                    }
                }
            }
        };
        let _lead = Lead { group: self };
        let others: Vec<Waiting<J, R>> = {
            let mut q = self.lock();
            let n = q.waiting.len().min(MAX_BATCH - 1);
            q.waiting.drain(..n).collect()
        };
        let mut jobs = Vec::with_capacity(others.len() + 1);
        jobs.push(own);
        let mut turns = Vec::with_capacity(others.len());
        for w in others {
            jobs.push(w.job);
            turns.push(w.turn);
        }
        let mut results = blocking(|| exec(jobs)).into_iter();
        let mine = results.next().expect("exec returns one result per job");
        for (turn, r) in turns.into_iter().zip(results) {
            // A caller that went away gets nothing; its job ran anyway (as if it had gone away
            // after the answer).
            let _ = turn.send(Turn::Done(r));
        }
        mine
    }
}

/// Runs `f`, which blocks (a transaction and its sync to disk), without holding up the
/// runtime's other tasks when it has threads to move them to.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_job_gets_its_own_result_and_bursts_share_batches() {
        let group = Arc::new(GroupCommit::<u32, u32>::default());
        let batches = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..200u32)
            .map(|i| {
                let (group, batches) = (group.clone(), batches.clone());
                tokio::spawn(async move {
                    group
                        .run(i, |jobs| {
                            batches.fetch_add(1, Ordering::SeqCst);
                            assert!(jobs.len() <= MAX_BATCH);
                            std::thread::sleep(std::time::Duration::from_millis(2));
                            jobs.iter().map(|j| j * 10).collect()
                        })
                        .await
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), i as u32 * 10);
        }
        let n = batches.load(Ordering::SeqCst);
        assert!(n < 200, "200 jobs arriving together ran in {n} batches");
        assert!(!group.lock().leading, "the lead is given up once the queue is empty");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_batch_does_not_strand_the_others() {
        let group = Arc::new(GroupCommit::<u32, u32>::default());
        let tasks: Vec<_> = (0..50u32)
            .map(|i| {
                let group = group.clone();
                tokio::spawn(async move {
                    group
                        .run(i, |jobs| {
                            std::thread::sleep(std::time::Duration::from_millis(1));
                            assert!(!jobs.contains(&7), "job 7 breaks its batch");
                            jobs.iter().map(|j| j + 1).collect()
                        })
                        .await
                })
            })
            .collect();
        let mut ok = 0;
        for (i, t) in tasks.into_iter().enumerate() {
            if let Ok(r) = t.await {
                assert_eq!(r, i as u32 + 1);
                ok += 1;
            }
        }
        // Job 7 fails, and so does the leader of a batch it joined; the others in that batch
        // ran again alone and finished.
        assert!((48..50).contains(&ok), "{ok} finished");
        assert!(!group.lock().leading);
    }
}
