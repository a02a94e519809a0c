//! Group commit: many requests share one durable commit.
//!
//! # Protocol
//! One writer thread owns the [`Store`]. Requests send it jobs (closures over the store) through
//! a FIFO channel. The thread takes every job that is waiting, runs them in order inside one
//! transaction (`begin`), commits it (`commit`: one `fsync` under `synchronous = FULL`), and
//! only then hands each job its result. So:
//!
//! - nothing is answered before it is on disk: a caller that got `Ok` from [`Db::call`] knows
//!   its write, and every job queued before it, survives `kill -9`;
//! - a read returns only after the batch it ran in committed, so a client can never see a
//!   message that a crash would then roll back (whose id could later be reused);
//! - while one batch is being synced the next one queues up, so the number of `fsync`s per
//!   second stays flat as load grows and throughput grows with concurrency.
//!
//! Each job runs in its own savepoint: a job that fails is undone on its own, even half way
//! through several operations, and does not fail its batch. If the commit itself fails, every job in the batch gets
//! [`StoreError::Commit`] and the transaction is rolled back.

use crate::store::{Store, StoreError};
use std::future::Future;
use std::sync::mpsc;

/// What a job hands back once the batch's fate is known.
type Done = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A unit of work for the writer thread: whether it succeeded, and its completion.
type Job = Box<dyn FnOnce(&mut dyn Store) -> (bool, Done) + Send>;

/// Most jobs in one batch: bounds the time a batch holds results back.
const MAX_BATCH: usize = 4096;

/// A handle to the writer thread. Cheap to clone; the thread ends when the last handle drops,
/// after finishing every job already sent.
#[derive(Clone)]
pub struct Db {
    jobs: mpsc::Sender<Job>,
}

impl Db {
    /// Starts the writer thread over `store`.
    pub fn start(store: Box<dyn Store>) -> Db {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("scanlab-commit".into())
            .spawn(move || writer(store, rx))
            .expect("spawning the commit thread");
        Db { jobs }
    }

    fn send<R: Send + 'static>(
        &self,
        op: impl FnOnce(&mut dyn Store) -> Result<R, StoreError> + Send + 'static,
        reply: impl FnOnce(Result<R, StoreError>) + Send + 'static,
    ) {
        let job: Job = Box::new(move |s| {
            let r = op(s);
            let ok = r.is_ok();
            let done: Done = Box::new(move |commit: Result<(), String>| {
                reply(match commit {
                    Ok(()) => r,
                    Err(e) => Err(StoreError::Commit(e)),
                })
            });
            (ok, done)
        });
        // If the writer is gone (it panicked), the job and its reply channel are dropped here,
        // and the caller gets `WriterGone` instead of hanging.
        let _ = self.jobs.send(job);
    }

    /// Queues `op` now and returns a future of its result, which resolves once the batch it ran
    /// in is committed. Queuing happens at the call, not at the first poll, so two calls made
    /// in sequence run in that order even if their futures are awaited later.
    pub fn call<R: Send + 'static>(
        &self,
        op: impl FnOnce(&mut dyn Store) -> Result<R, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<R, StoreError>> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(op, move |r| {
            let _ = tx.send(r);
        });
        async move { rx.await.unwrap_or(Err(StoreError::WriterGone)) }
    }

    /// [`Db::call`] for code outside an async runtime: blocks until committed.
    pub fn call_blocking<R: Send + 'static>(
        &self,
        op: impl FnOnce(&mut dyn Store) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(op, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or(Err(StoreError::WriterGone))
    }
}

/// Runs one job inside its own savepoint, so a job made of several operations is all or
/// nothing even when it fails half way.
fn run(store: &mut dyn Store, job: Job) -> Done {
    let marked = store.mark().is_ok();
    let (ok, done) = job(store);
    if marked {
        let _ = store.unmark(ok);
    }
    done
}

fn writer(mut store: Box<dyn Store>, rx: mpsc::Receiver<Job>) {
    let mut done: Vec<Done> = Vec::new();
    while let Ok(first) = rx.recv() {
        // If no transaction can be opened, each job still runs atomically on its own (the
        // store's methods use savepoints, which then commit by themselves), so its own result
        // is the truth.
        let in_tx = store.begin().is_ok();
        done.push(run(&mut *store, first));
        while done.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => done.push(run(&mut *store, job)),
                Err(_) => break,
            }
        }
        let outcome = if in_tx {
            store.commit().map_err(|e| {
                let _ = store.rollback();
                e.to_string()
            })
        } else {
            Ok(())
        };
        for d in done.drain(..) {
            d(outcome.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    /// Counts transactions around a real SQLite store.
    struct Counting {
        inner: SqliteStore,
        commits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    macro_rules! forward {
        ($($f:ident($($a:ident: $t:ty),*) -> $r:ty;)*) => {
            $(fn $f(&mut self, $($a: $t),*) -> Result<$r, StoreError> { self.inner.$f($($a),*) })*
        };
    }

    impl Store for Counting {
        fn commit(&mut self) -> Result<(), StoreError> {
            self.commits
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.commit()
        }
        forward! {
            begin() -> ();
            rollback() -> ();
            mark() -> ();
            unmark(keep: bool) -> ();
            register(name: &str, k: &[u8; 32]) -> bool;
            identity_key(name: &str) -> Option<[u8; 32]>;
            claim_commit(g: &str, e: u64) -> bool;
            group_members(g: &str) -> Vec<String>;
            add_group_members(g: &str, n: &[String]) -> ();
            kt_append(n: &str, k: &[u8; 32]) -> ();
            kt_leaves() -> Vec<(String, [u8; 32])>;
            put_token(t: &str, n: &str, i: i64) -> ();
            token_owner(t: &str) -> Option<(String, i64)>;
            add_key_packages(n: &str, p: &[Vec<u8>]) -> ();
            take_key_package(n: &str) -> Option<Vec<u8>>;
            enqueue(g: &str, s: &str, r: &[String], p: &[u8], f: Option<&str>) -> i64;
            pending(n: &str, l: usize) -> Vec<crate::store::Queued>;
            ack(n: &str, i: &[i64]) -> usize;
            put_blob(d: &[u8]) -> String;
            get_blob(i: &str) -> Option<Vec<u8>>;
            record(r: &crate::store::ViewRecord) -> ();
            view() -> Vec<crate::store::ViewRecord>;
            state(s: &str, k: &str) -> Option<Vec<u8>>;
            set_state(s: &str, k: &str, v: &[u8]) -> ();
            put_review(r: &crate::store::Review) -> i64;
            reviews() -> Vec<crate::store::Review>;
        }
    }

    #[test]
    fn queued_jobs_share_one_commit_and_a_failing_job_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let commits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let db = Db::start(Box::new(Counting {
            inner: SqliteStore::open(dir.path()).unwrap(),
            commits: commits.clone(),
        }));
        // Hold the writer inside a first job until 100 more are queued behind it.
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (first_tx, first_rx) = mpsc::channel();
        db.send(
            move |s| {
                go_rx.recv().unwrap();
                s.enqueue("g", "a", &["b".into()], b"first", None)
            },
            move |r| first_tx.send(r).unwrap(),
        );
        let (tx, rx) = mpsc::channel();
        for i in 0..100u8 {
            let tx = tx.clone();
            db.send(
                move |s| {
                    if i == 50 {
                        // Writes, then fails: its write must be undone, the others kept.
                        s.enqueue("g", "a", &["b".into()], b"doomed", None)?;
                        return Err(StoreError::WriterGone);
                    }
                    s.enqueue("g", "a", &["b".into()], &[i], None)
                },
                move |r| tx.send((i, r)).unwrap(),
            );
        }
        go_tx.send(()).unwrap();
        assert!(first_rx.recv().unwrap().is_ok());
        let mut ok = 0;
        for _ in 0..100 {
            let (i, r) = rx.recv().unwrap();
            assert_eq!(r.is_err(), i == 50, "job {i}: {r:?}");
            ok += r.is_ok() as usize;
        }
        assert_eq!(ok, 99);
        // One batch for the first job and everything queued behind it.
        assert_eq!(commits.load(std::sync::atomic::Ordering::SeqCst), 1);
        let pending = db.call_blocking(|s| s.pending("b", 1000)).unwrap();
        assert_eq!(pending.len(), 100);
        assert!(pending.iter().all(|m| m.payload != b"doomed"));
        // And it is on disk: a fresh connection sees it.
        drop(db);
        let mut again = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(again.pending("b", 1000).unwrap().len(), 100);
    }
}
