//! The learning pool off the agent's loop: one thread takes uploads,
//! lease claims and releases in order and answers through a channel. It
//! connects when it has work and connects again after a failure, so a
//! broker that comes and goes costs a failed job, never the agent's loop.

use std::path::PathBuf;
use std::sync::mpsc;

use super::pool::{Claim, LearningPool, PoolData};
use super::FleetOptions;

pub(crate) enum PoolJob {
    /// Upload what grew in a learning folder.
    Upload {
        workload: String,
        dir: PathBuf,
    },
    /// Once the learning files are written (`written`), upload the last
    /// of them, take the lease and, if taken, read the pool into `into`.
    Claim {
        workload: String,
        dir: PathBuf,
        written: mpsc::Receiver<()>,
        into: PathBuf,
    },
    Release {
        workload: String,
    },
    /// A learning folder was removed: its files start afresh.
    Forget {
        dir: PathBuf,
    },
}

pub(crate) enum PoolAnswer {
    Uploaded {
        workload: String,
        result: Result<usize, String>,
    },
    /// This node trains the pool: its data are in the claim's folder.
    Claimed { workload: String, data: PoolData },
    /// Another node trains it, or the fleet has a model already.
    NotClaimed { workload: String, claim: Claim },
    /// The broker could not be asked: train alone.
    Unavailable { workload: String, error: String },
    Released {
        workload: String,
        result: Result<(), String>,
    },
}

/// The pool's thread; it ends when the agent drops its sender.
pub(crate) struct PoolWorker {
    tx: mpsc::Sender<PoolJob>,
    pub(crate) answers: mpsc::Receiver<PoolAnswer>,
}

impl PoolWorker {
    pub(crate) fn start(opts: FleetOptions) -> Result<PoolWorker, String> {
        let (tx, jobs) = mpsc::channel();
        let (answer_tx, answers) = mpsc::channel();
        std::thread::Builder::new()
            .name("chids-pool".into())
            .spawn(move || work(&opts, jobs, &answer_tx))
            .map_err(|e| format!("start the learning pool's thread: {e}"))?;
        Ok(PoolWorker { tx, answers })
    }

    pub(crate) fn send(&self, job: PoolJob) {
        let _ = self.tx.send(job);
    }
}

fn work(opts: &FleetOptions, jobs: mpsc::Receiver<PoolJob>, out: &mpsc::Sender<PoolAnswer>) {
    let mut pool: Option<LearningPool> = None;
    for job in jobs {
        if let PoolJob::Forget { dir } = &job {
            if let Some(p) = pool.as_mut() {
                p.forget(dir);
            }
            continue;
        }
        if pool.is_none() {
            match LearningPool::connect(opts) {
                Ok(p) => pool = Some(p),
                Err(e) => {
                    let _ = out.send(failed(job, e));
                    continue;
                }
            }
        }
        let p = pool.as_mut().expect("connected above");
        let answer = run(p, job);
        if answer_failed(&answer) {
            // Connect afresh for the next job.
            pool = None;
        }
        if out.send(answer).is_err() {
            return;
        }
    }
}

fn run(pool: &mut LearningPool, job: PoolJob) -> PoolAnswer {
    match job {
        PoolJob::Upload { workload, dir } => {
            let result = pool.upload(&workload, &dir);
            PoolAnswer::Uploaded { workload, result }
        }
        PoolJob::Claim {
            workload,
            dir,
            written,
            into,
        } => {
            // An error: the writer is gone, what is on disk is all.
            let _ = written.recv();
            let claimed = pool
                .upload(&workload, &dir)
                .and_then(|_| pool.claim(&workload));
            match claimed {
                Ok(Claim::Taken) => match pool.fetch(&workload, &into) {
                    Ok(data) => PoolAnswer::Claimed { workload, data },
                    Err(error) => {
                        let _ = pool.release(&workload);
                        PoolAnswer::Unavailable { workload, error }
                    }
                },
                Ok(claim) => PoolAnswer::NotClaimed { workload, claim },
                Err(error) => PoolAnswer::Unavailable { workload, error },
            }
        }
        PoolJob::Release { workload } => {
            let result = pool.release(&workload);
            PoolAnswer::Released { workload, result }
        }
        PoolJob::Forget { .. } => unreachable!("handled before connecting"),
    }
}

/// The answer for a job the broker could not be asked about.
fn failed(job: PoolJob, error: String) -> PoolAnswer {
    match job {
        PoolJob::Upload { workload, .. } => PoolAnswer::Uploaded {
            workload,
            result: Err(error),
        },
        PoolJob::Claim { workload, .. } => PoolAnswer::Unavailable { workload, error },
        PoolJob::Release { workload } => PoolAnswer::Released {
            workload,
            result: Err(error),
        },
        PoolJob::Forget { .. } => unreachable!("handled before connecting"),
    }
}

fn answer_failed(a: &PoolAnswer) -> bool {
    matches!(
        a,
        PoolAnswer::Uploaded { result: Err(_), .. }
            | PoolAnswer::Unavailable { .. }
            | PoolAnswer::Released { result: Err(_), .. }
    )
}
