//! CPU time per stage of `pulso run` (read, route, tokenize, model, enrich, aggregate, write), for
//! the manifest's `cpu_s` and the question "is the model ≥ 90% of the work?".
//!
//! Each stage adds the calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) over the code it
//! runs to a process-wide counter, so stages that run on several threads (tokenization on rayon,
//! the model on its replicas) are summed over threads. Coarse spans only (per text chunk, per
//! batch, per record for the two per-record stages): a few hundred nanoseconds each.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Read,
    Route,
    Tokenize,
    Model,
    Enrich,
    Aggregate,
    Write,
}

const STAGES: [(Stage, &str); 7] = [
    (Stage::Read, "read"),
    (Stage::Route, "route"),
    (Stage::Tokenize, "tokenize"),
    (Stage::Model, "model"),
    (Stage::Enrich, "enrich"),
    (Stage::Aggregate, "aggregate"),
    (Stage::Write, "write"),
];

static NS: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];

/// CPU time of the calling thread, in nanoseconds (0 where the clock is unavailable).
pub fn thread_ns() -> u64 {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
        }
    }
    0
}

/// CPU time of the whole process so far (user + system), in seconds.
pub fn process_s() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: getrusage fills the struct we own.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0 {
            let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
            return s(ru.ru_utime) + s(ru.ru_stime);
        }
    }
    0.0
}

/// Adds `ns` nanoseconds to `stage`.
pub fn add(stage: Stage, ns: u64) {
    NS[stage as usize].fetch_add(ns, Ordering::Relaxed);
}

/// Adds the calling thread's CPU time from now until the guard drops.
pub struct Span {
    stage: Stage,
    start: u64,
}

impl Span {
    pub fn new(stage: Stage) -> Span {
        Span {
            stage,
            start: thread_ns(),
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        add(self.stage, thread_ns().saturating_sub(self.start));
    }
}

/// Seconds per stage since the process started, in pipeline order.
pub fn snapshot() -> Vec<(&'static str, f64)> {
    STAGES
        .iter()
        .map(|&(s, name)| (name, NS[s as usize].load(Ordering::Relaxed) as f64 * 1e-9))
        .collect()
}

/// `after - before`, stage by stage (two [`snapshot`]s around a run).
pub fn since(before: &[(&'static str, f64)]) -> Vec<(&'static str, f64)> {
    snapshot()
        .into_iter()
        .zip(before)
        .map(|((n, a), (_, b))| (n, (a - b).max(0.0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_counts_cpu_not_sleep() {
        let before = NS[Stage::Aggregate as usize].load(Ordering::Relaxed);
        {
            let _s = Span::new(Stage::Aggregate);
            let mut x = 0u64;
            for i in 0..3_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let added = NS[Stage::Aggregate as usize].load(Ordering::Relaxed) - before;
        assert!(added > 0, "busy loop must count");
        assert!(
            added < 45_000_000,
            "sleep must not count as CPU: {added} ns"
        );
    }
}
