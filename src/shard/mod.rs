//! Sharded runs: `pulso run --shard I/N --run-id ID` scores one deterministic slice of a night and
//! stages it; `pulso commit --run-id ID` checks that all N shards finished alike and publishes the
//! whole night through the one commit point of [`crate::publish`].
//!
//! **Which shard owns a record.** A record belongs to shard `h(source, id) mod N` (the same
//! `source \0 id` bytes and hash the duplicate check uses), so every copy of a record id lands in
//! one shard, in input order, and that shard keeps the first copy and rejects the others exactly as
//! a single process would. Sources without an id column already use `file:line` (or `file:row N`)
//! as the id; a row rejected before it has an id is owned by the hash of its location.
//!
//! **Staging layout** (every name is a plain key: written once, never renamed or linked, so the
//! same layout works on an object store):
//!
//! ```text
//! OUT/_pulso/staging/RUN_ID/shard-0003-of-0007/attempt-20261114T020304.123456789Z-1a2b3c/
//!     signals/segment=internal/part-00000.parquet
//!     signals/segment=external/part-00000.parquet
//!     rejects/part-00000.parquet
//!     aggregate-input.jsonl.zst          what the aggregates need, per signal, in input order
//!     manifest.json                      written last: an attempt without it is incomplete
//! ```
//!
//! A retried shard writes a new attempt; the commit takes the latest complete attempt of each
//! shard (by the attempt id, which starts with the UTC start time) and ignores the others, so a
//! retry replaces, never duplicates. A finished shard removes its own older attempts.
//!
//! **Object-store outputs** (`--out s3://…`): the same keys under `OUT/_pulso/staging/RUN_ID/`;
//! a shard uploads its attempt when it is done, the manifest last ([`remote`]).
//!
//! **Cleanup.** The commit removes the run's staging folder once the run is published. A shard
//! of an already committed run (a pod retried too late) exits 2 and keeps nothing: it checks
//! before it starts and again after writing its manifest. The commit of a later run also removes
//! what is left under the staging folder of the run it replaces.

mod aggrow;
pub mod commit;
pub mod remote;
mod stage;

pub use aggrow::{AggRow, AggRowReader, AggRowWriter};
pub use stage::{Stage, StagedShard};

use std::path::{Path, PathBuf};
use thiserror::Error;

/// Most shards one run may have.
pub const MAX_SHARDS: u32 = 10_000;
/// The shard count for `--shard auto`; Kubernetes sets only the index (`JOB_COMPLETION_INDEX`).
pub const COUNT_ENV: &str = "PULSO_SHARD_COUNT";
/// The shard index of a pod of a Kubernetes Indexed Job.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// Name of a shard attempt's manifest (written last).
pub const MANIFEST: &str = "manifest.json";
/// Name of a shard attempt's aggregate input.
pub const AGG_INPUT: &str = "aggregate-input.jsonl.zst";

/// Each way a shard spec, a run id or a staged run can be unusable.
#[derive(Debug, Error)]
pub enum ShardError {
    #[error("--shard {0:?}: expected I/N (0 <= I < N <= {MAX_SHARDS}, e.g. 3/7) or auto")]
    BadSpec(String),
    #[error("--shard auto: {0} is not set; on Kubernetes run pulso in an Indexed Job (completionMode: Indexed), elsewhere pass --shard I/N")]
    NoIndex(&'static str),
    #[error("--shard auto: {0} is not set; set it to the Job's completions (see deploy/kubernetes/README.md) or pass --shard I/N")]
    NoCount(&'static str),
    #[error("--shard auto: {name}={value:?} is not a valid {what}")]
    BadEnv {
        name: &'static str,
        value: String,
        what: &'static str,
    },
    #[error("--shard needs --run-id: every shard of one night must be started with the same --run-id (on Kubernetes, the Job's name)")]
    NoRunId,
    #[error("run {run_id} is already published (version {version} of {out}): a shard of a committed run stages nothing, and nothing of this shard was kept. To score the night again, start every shard with a new --run-id")]
    Committed {
        run_id: String,
        out: String,
        version: u64,
    },
    #[error("--run-id {0:?}: use 1 to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-' (a Kubernetes Job name works)")]
    BadRunId(String),
}

/// One slice of a night: shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardSpec {
    pub index: u32,
    pub count: u32,
}

impl std::fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl ShardSpec {
    pub fn new(index: u32, count: u32) -> Result<ShardSpec, ShardError> {
        if count == 0 || count > MAX_SHARDS || index >= count {
            return Err(ShardError::BadSpec(format!("{index}/{count}")));
        }
        Ok(ShardSpec { index, count })
    }

    /// `I/N`, or `auto` (index from `JOB_COMPLETION_INDEX`, count from `PULSO_SHARD_COUNT`).
    pub fn parse(s: &str) -> Result<ShardSpec, ShardError> {
        if s == "auto" {
            return Self::from_env(|k| std::env::var(k).ok());
        }
        let bad = || ShardError::BadSpec(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let digits =
            |x: &str| !x.is_empty() && x.len() <= 6 && x.bytes().all(|b| b.is_ascii_digit());
        if !digits(i) || !digits(n) {
            return Err(bad());
        }
        Self::new(i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?).map_err(|_| bad())
    }

    /// `--shard auto` from an environment lookup.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<ShardSpec, ShardError> {
        let num = |name: &'static str, what: &'static str, missing: ShardError| {
            let v = get(name).filter(|v| !v.trim().is_empty()).ok_or(missing)?;
            v.trim().parse::<u32>().map_err(|_| ShardError::BadEnv {
                name,
                value: v.clone(),
                what,
            })
        };
        let index = num(INDEX_ENV, "shard index", ShardError::NoIndex(INDEX_ENV))?;
        let count = num(COUNT_ENV, "shard count", ShardError::NoCount(COUNT_ENV))?;
        ShardSpec::new(index, count).map_err(|_| ShardError::BadEnv {
            name: INDEX_ENV,
            value: format!("{index} (with {COUNT_ENV}={count})"),
            what: "shard index below the shard count",
        })
    }

    /// `shard-0003-of-0007`
    pub fn dir_name(&self) -> String {
        format!("shard-{:04}-of-{:04}", self.index, self.count)
    }

    /// Parses [`ShardSpec::dir_name`].
    pub fn from_dir_name(name: &str) -> Option<ShardSpec> {
        let rest = name.strip_prefix("shard-")?;
        let (i, n) = rest.split_once("-of-")?;
        ShardSpec::new(i.parse().ok()?, n.parse().ok()?).ok()
    }

    fn owns_hash(&self, h: u64) -> bool {
        // Multiply-shift: uniform over the count without the bias of `h % count`.
        ((h as u128 * self.count as u128) >> 64) as u32 == self.index
    }

    /// Whether a record with this (source, id) belongs to this shard (same key bytes and hash
    /// as the duplicate check, [`crate::pipeline::Dedup`]).
    pub fn owns_record(&self, source: &str, id: &str) -> bool {
        self.owns_hash(record_key_hash(source, id))
    }

    /// Whether a row rejected before it had an id belongs to this shard (by its location).
    pub fn owns_reject(&self, source: &str, location: &str) -> bool {
        let mut key = Vec::with_capacity(source.len() + location.len() + 2);
        key.extend_from_slice(source.as_bytes());
        key.extend_from_slice(b"\0\x01");
        key.extend_from_slice(location.as_bytes());
        self.owns_hash(xxhash_rust::xxh3::xxh3_64(&key))
    }
}

/// The 64-bit hash of `source \0 id` that both the duplicate check and shard ownership use.
pub fn record_key_hash(source: &str, id: &str) -> u64 {
    let mut key = Vec::with_capacity(source.len() + id.len() + 1);
    key.extend_from_slice(source.as_bytes());
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    xxhash_rust::xxh3::xxh3_64(&key)
}

/// Checks a `--run-id` (it names folders and keys, and must be the same for every shard).
pub fn validate_run_id(id: &str) -> Result<(), ShardError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with(['.', '-'])
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ShardError::BadRunId(id.to_string()))
    }
}

/// `OUT/_pulso/staging/RUN_ID`
pub fn staging_root(out: &Path, run_id: &str) -> PathBuf {
    out.join(crate::publish::META).join("staging").join(run_id)
}

/// A sequence key that orders signals as a single process reads them: file index, then the
/// record's position in its file.
pub fn seq(file_index: usize, ordinal: u64) -> u64 {
    ((file_index as u64) << 40) | (ordinal & ((1 << 40) - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_reject_nonsense() {
        assert_eq!(
            ShardSpec::parse("3/7").unwrap(),
            ShardSpec::new(3, 7).unwrap()
        );
        for bad in ["7/7", "0/0", "-1/3", "1/", "/3", "a/b", "1/3/4", "1 /3", ""] {
            assert!(ShardSpec::parse(bad).is_err(), "{bad}");
        }
        let env = |i: Option<&str>, n: Option<&str>| {
            let (i, n) = (i.map(String::from), n.map(String::from));
            ShardSpec::from_env(move |k| if k == INDEX_ENV { i.clone() } else { n.clone() })
        };
        assert_eq!(
            env(Some("2"), Some("5")).unwrap(),
            ShardSpec::new(2, 5).unwrap()
        );
        assert!(matches!(env(None, Some("5")), Err(ShardError::NoIndex(_))));
        assert!(matches!(env(Some("1"), None), Err(ShardError::NoCount(_))));
        assert!(matches!(
            env(Some("5"), Some("5")),
            Err(ShardError::BadEnv { .. })
        ));
        let s = ShardSpec::new(3, 7).unwrap();
        assert_eq!(ShardSpec::from_dir_name(&s.dir_name()), Some(s));
    }

    #[test]
    fn every_key_has_exactly_one_owner_and_the_split_is_even() {
        for n in [1u32, 3, 7] {
            let mut per = vec![0u32; n as usize];
            for k in 0..7000 {
                let id = format!("id-{k}");
                let owners: Vec<u32> = (0..n)
                    .filter(|i| ShardSpec::new(*i, n).unwrap().owns_record("src", &id))
                    .collect();
                assert_eq!(owners.len(), 1, "{id} of {n}");
                per[owners[0] as usize] += 1;
                let r: Vec<u32> = (0..n)
                    .filter(|i| ShardSpec::new(*i, n).unwrap().owns_reject("src", &id))
                    .collect();
                assert_eq!(r.len(), 1);
            }
            let expect = 7000 / n;
            assert!(
                per.iter().all(|c| c.abs_diff(expect) < expect / 5 + 10),
                "{per:?}"
            );
        }
    }

    #[test]
    fn run_ids() {
        for ok in ["pulso-nightly-20261114", "a", "Run_1.2"] {
            validate_run_id(ok).unwrap();
        }
        for bad in ["", ".x", "-x", "a/b", "a b", &"x".repeat(129), "ü"] {
            assert!(validate_run_id(bad).is_err(), "{bad}");
        }
    }
}
