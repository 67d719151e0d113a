//! `pulso commit`: checks that every shard of a run finished with the same configuration, model
//! and inputs, computes the aggregates over all shards' signals (replayed in input order through
//! the same [`crate::aggregate::Aggregator`]), applies the guard rails to the whole night and
//! publishes it with the one commit of [`crate::publish`]. Anything missing: nothing is published.

use super::remote::{Claim, StoreStaging};
use super::{AggRowReader, ShardSpec, AGG_INPUT, MANIFEST};
use crate::aggregate::AggregateConfig;
use crate::config::Plan;
use crate::pipeline::FileCounts;
use crate::publish::guard::{self, SourceTally};
use crate::sink::{Published, SinkConfig};
use crate::summary::RunStats;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BinaryHeap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use thiserror::Error;

/// Each way the staged shards of a run can fail the commit (all exit 2, nothing published).
#[derive(Debug, Error)]
pub enum StagedError {
    #[error("no shard of run {run_id} is staged under {dir}; start the shards with --shard I/N --run-id {run_id} and the same --out and --date, then commit")]
    NothingStaged { run_id: String, dir: PathBuf },
    #[error("the shards of run {run_id} under {dir} disagree on the shard count ({counts}); start every shard with the same N (or remove the staging folder of the wrong ones)")]
    Counts {
        run_id: String,
        dir: PathBuf,
        counts: String,
    },
    #[error("shard {spec} of run {run_id} has no complete attempt under {dir} (it did not run, failed, or is still running); run it again with --shard {spec} --run-id {run_id}, then commit again. Nothing was published")]
    Missing {
        spec: ShardSpec,
        run_id: String,
        dir: PathBuf,
    },
    #[error("shard {spec} of run {run_id} ({attempt}) ran with {what} {found}, but {expected_from} has {expected}; run the shard again with the same pipeline file, --model, --date and inputs, then commit again. Nothing was published")]
    Mismatch {
        spec: ShardSpec,
        run_id: String,
        attempt: String,
        what: &'static str,
        found: String,
        expected: String,
        expected_from: String,
    },
    #[error("{path}: {message}; run that shard again, then commit again. Nothing was published")]
    Damaged { path: PathBuf, message: String },
}

/// Options of `pulso commit`.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Publish even when a guard rail would stop the run.
    pub allow_rejects: bool,
    /// The expected shard count (else taken from the staged folders).
    pub shards: Option<u32>,
}

/// What a commit did.
#[derive(Debug)]
pub struct CommitOutcome {
    pub run_id: String,
    pub stats: RunStats,
    pub published: Published,
    pub shards: u32,
    pub warnings: Vec<String>,
    /// The run was already the committed version (a commit retried after it succeeded).
    pub already_committed: bool,
    /// Per shard: `(shard, attempt taken, attempts ignored)`.
    pub picked: Vec<(ShardSpec, String, usize)>,
}

/// A short hash of the model files of a lineage (`lineage.model.files`).
pub fn model_hash(lineage: &Value) -> String {
    let files = serde_json::to_vec(&lineage["model"]["files"]).unwrap_or_default();
    hex::encode(Sha256::digest(&files))
}

/// The input files a run saw: (source, path, size in bytes).
fn input_files(plan: &Plan) -> Value {
    Value::Array(
        plan.sources
            .iter()
            .flat_map(|s| {
                s.files.iter().map(move |f| {
                    let size = std::fs::metadata(f).map(|m| m.len()).ok();
                    json!([s.name, f, size])
                })
            })
            .collect(),
    )
}

/// A shard's manifest: the run manifest of its slice plus what the commit needs to merge slices.
pub fn shard_manifest(
    mut manifest: Value,
    stats: &RunStats,
    tallies: &[(String, SourceTally)],
    plan: &Plan,
) -> Value {
    manifest["model_hash"] = json!(model_hash(&manifest["lineage"]));
    manifest["input_files"] = input_files(plan);
    manifest["merge"] = json!({
        "records": stats.records,
        "rejects": stats.rejects,
        "examples": tallies
            .iter()
            .map(|(n, t)| (n.clone(), t.examples.clone()))
            .collect::<BTreeMap<_, _>>(),
    });
    manifest
}

/// One staged shard, its latest complete attempt.
struct Staged {
    spec: ShardSpec,
    attempt: String,
    /// The attempt's local folder (for an object-store output, its downloaded copy).
    dir: PathBuf,
    /// Where the attempt is, for messages (its URL on an object store).
    shown: PathBuf,
    manifest: Value,
    /// Other attempt folders of the shard (older, incomplete), not taken.
    ignored: usize,
}

/// The latest complete attempt of shard folder `dir` (shown as `shown`), if any.
fn latest_attempt(dir: &Path, shown: &Path, spec: ShardSpec) -> Result<Option<Staged>> {
    let mut attempts: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("attempt-"))
            .collect(),
        Err(_) => return Ok(None),
    };
    attempts.sort();
    let ignored = attempts.len().saturating_sub(1);
    for attempt in attempts.into_iter().rev() {
        let adir = dir.join(&attempt);
        let Ok(body) = std::fs::read(adir.join(MANIFEST)) else {
            continue; // incomplete (killed, failed or still running)
        };
        let manifest: Value = serde_json::from_slice(&body).map_err(|e| StagedError::Damaged {
            path: shown.join(&attempt).join(MANIFEST),
            message: e.to_string(),
        })?;
        return Ok(Some(Staged {
            spec,
            shown: shown.join(&attempt),
            attempt,
            dir: adir,
            manifest,
            ignored,
        }));
    }
    Ok(None)
}

/// Finds every shard of `run_id` under the staging folder `local` (shown as `root`) and checks
/// they belong together.
fn load_shards(
    plan: &Plan,
    local: &Path,
    root: PathBuf,
    run_id: &str,
    expected: Option<u32>,
) -> Result<Vec<Staged>> {
    let mut specs: Vec<ShardSpec> = std::fs::read_dir(local)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| ShardSpec::from_dir_name(&e.file_name().to_string_lossy()))
        .collect();
    specs.sort_by_key(|s| (s.count, s.index));
    let mut counts: Vec<u32> = specs.iter().map(|s| s.count).collect();
    counts.dedup();
    if let Some(n) = expected {
        if counts.iter().any(|c| *c != n) {
            return Err(StagedError::Counts {
                run_id: run_id.into(),
                dir: root,
                counts: format!(
                    "--shards {n}, staged: {}",
                    counts
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
            .into());
        }
        counts = vec![n];
    }
    let n = match counts.as_slice() {
        [] => {
            return Err(StagedError::NothingStaged {
                run_id: run_id.into(),
                dir: root,
            }
            .into())
        }
        [n] => *n,
        many => {
            return Err(StagedError::Counts {
                run_id: run_id.into(),
                dir: root,
                counts: many
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into())
        }
    };
    let mut out = Vec::new();
    for i in 0..n {
        let spec = ShardSpec::new(i, n)?;
        let dir = root.join(spec.dir_name());
        match latest_attempt(&local.join(spec.dir_name()), &dir, spec)? {
            Some(s) => out.push(s),
            None => {
                return Err(StagedError::Missing {
                    spec,
                    run_id: run_id.into(),
                    dir,
                }
                .into())
            }
        }
    }
    // Same run, date, configuration (pipeline file + model reference), model files and inputs.
    let date = plan.date.format("%Y-%m-%d").to_string();
    let first = &out[0];
    let expect = [
        ("run id", json!(run_id), "this commit".to_string()),
        ("date", json!(date), "this commit (--date)".to_string()),
        (
            "config hash",
            json!(plan.config_hash),
            "this commit's pipeline file and --model".to_string(),
        ),
        (
            "model hash",
            first.manifest["model_hash"].clone(),
            format!("shard {} ({})", first.spec, first.attempt),
        ),
        (
            "input files",
            first.manifest["input_files"].clone(),
            format!("shard {} ({})", first.spec, first.attempt),
        ),
    ];
    let keys = ["run_id", "date", "config_hash", "model_hash", "input_files"];
    for s in &out {
        if s.manifest["shard"]["index"] != json!(s.spec.index)
            || s.manifest["shard"]["count"] != json!(s.spec.count)
        {
            return Err(StagedError::Damaged {
                path: s.shown.join(MANIFEST),
                message: format!("the manifest is not shard {}'s", s.spec),
            }
            .into());
        }
        for ((what, expected, from), key) in expect.iter().zip(keys) {
            let found = &s.manifest[key];
            if found != expected {
                let short = |v: &Value| {
                    let t = v
                        .as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string());
                    if t.chars().count() > 120 {
                        format!("{}…", t.chars().take(120).collect::<String>())
                    } else {
                        t
                    }
                };
                return Err(StagedError::Mismatch {
                    spec: s.spec,
                    run_id: run_id.into(),
                    attempt: s.attempt.clone(),
                    what,
                    found: short(found),
                    expected: short(expected),
                    expected_from: from.clone(),
                }
                .into());
            }
        }
    }
    Ok(out)
}

/// Whether every one of the `count` shards of `run_id` has a complete attempt (for the last shard
/// to finish, `pulso run --shard … --commit-when-complete`).
pub fn all_staged(plan: &Plan, run_id: &str, count: u32) -> bool {
    if let Some(url) = store_url(&plan.out) {
        return crate::storage::remote(url)
            .is_ok_and(|r| StoreStaging::new(r, run_id).all_staged(count));
    }
    let root = super::staging_root(&plan.out, run_id);
    (0..count).all(|i| {
        ShardSpec::new(i, count)
            .ok()
            .and_then(|spec| {
                let d = root.join(spec.dir_name());
                latest_attempt(&d, &d, spec).ok().flatten()
            })
            .is_some()
    })
}

/// The output's URL when it is on an object store.
fn store_url(out: &Path) -> Option<&str> {
    out.to_str().filter(|_| crate::storage::is_url_path(out))
}

/// The outcome of a commit that found `run_id` already published.
fn already(run_id: &str) -> CommitOutcome {
    CommitOutcome {
        run_id: run_id.into(),
        stats: RunStats::default(),
        published: Published::default(),
        shards: 0,
        warnings: vec![],
        already_committed: true,
        picked: vec![],
    }
}

fn is_committed(plan: &Plan, run_id: &str) -> Result<bool> {
    Ok(crate::publish::target::current_version(&plan.out)
        .with_context(|| {
            format!(
                "cannot read the committed version of {}",
                plan.out.display()
            )
        })?
        .is_some_and(|c| c.run_id == run_id))
}

/// Removes what is left of a committed run's staging folder (failures are warnings: the run is
/// published either way).
fn remove_staging(out: &Path, run_id: &str) {
    match store_url(out) {
        Some(url) => {
            if let Ok(r) = crate::storage::remote(url) {
                let st = StoreStaging::new(r, run_id);
                if let Err(e) = st.remove() {
                    eprintln!("pulso: warning: run {run_id} is published, but its staging folder {} was not removed ({e}); delete it, or the next sharded commit removes it", st.url());
                }
            }
        }
        None => {
            let d = super::staging_root(out, run_id);
            if let Err(e) = std::fs::remove_dir_all(&d) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("pulso: warning: run {run_id} is published, but its staging folder {} was not removed ({e}); delete it, or the next sharded commit removes it", d.display());
                }
            }
        }
    }
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Commits run `run_id` of `plan`'s date and output from its staged shards.
pub fn commit(plan: &Plan, run_id: &str, opts: &CommitOptions) -> Result<CommitOutcome> {
    let started = Instant::now();
    super::validate_run_id(run_id)?;
    if is_committed(plan, run_id)? {
        // A commit retried after it succeeded (or killed before its cleanup): tidy up only.
        remove_staging(&plan.out, run_id);
        return Ok(already(run_id));
    }
    let Some(url) = store_url(&plan.out) else {
        let local = super::staging_root(&plan.out, run_id);
        let shards = load_shards(plan, &local, local.clone(), run_id, opts.shards)?;
        let out = publish_shards(plan, run_id, opts, shards, started)?;
        remove_staging(&plan.out, run_id);
        sweep_previous(plan, &out.1);
        return Ok(out.0);
    };

    // Object store: claim the commit, mirror the picked attempts locally, then the same code.
    let st = StoreStaging::new(crate::storage::remote(url)?, run_id);
    let claim = Claim::take(&st)?;
    if is_committed(plan, run_id)? {
        claim.release();
        remove_staging(&plan.out, run_id);
        return Ok(already(run_id));
    }
    let scratch = crate::storage::scratch_dir("commit")?;
    let _tidy = RemoveOnDrop(scratch.clone());
    let local = scratch.join(run_id);
    std::fs::create_dir_all(&local)
        .with_context(|| format!("cannot create {}", local.display()))?;
    // One listing: the attempts checked are the attempts downloaded.
    let listing = st.list()?;
    let picked = StoreStaging::pick(&listing);
    st.fetch(&listing, &picked, &local, true)?;
    let shown = super::remote::shown(st.url());
    let shards = load_shards(plan, &local, shown, run_id, opts.shards)?;
    st.fetch(&listing, &picked, &local, false)?;
    let (mut outcome, manifest) = publish_shards(plan, run_id, opts, shards, started)?;
    outcome.picked = outcome
        .picked
        .iter()
        .map(|(spec, attempt, _)| {
            let ignored = picked
                .iter()
                .find(|p| p.shard_dir == spec.dir_name())
                .map_or(0, |p| p.ignored_complete + p.ignored_incomplete);
            (*spec, attempt.clone(), ignored)
        })
        .collect();
    if let Err(e) = st.remove() {
        eprintln!("pulso: warning: run {run_id} is published, but its staging folder {} was not removed ({e}); delete it, or the next sharded commit removes it", st.url());
    }
    claim.release();
    sweep_previous(plan, &manifest);
    Ok(outcome)
}

/// Deletes a folder when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The run this commit replaced left its staging folder behind (a shard of it killed after its
/// commit): remove it now.
fn sweep_previous(plan: &Plan, manifest: &Value) {
    if let Some(prev) = manifest["commit"]["previous_run_id"].as_str() {
        if super::validate_run_id(prev).is_ok() {
            remove_staging(&plan.out, prev);
        }
    }
}

/// Merges the checked shards and publishes them (the one commit). Returns the outcome and the
/// published manifest.
fn publish_shards(
    plan: &Plan,
    run_id: &str,
    opts: &CommitOptions,
    shards: Vec<Staged>,
    started: Instant,
) -> Result<(CommitOutcome, Value)> {
    let first = &shards[0].manifest;
    let model_name = first["model"]["name"].as_str().unwrap_or("").to_string();

    // Per-file counts, statistics and per-source tallies: sums over the shards.
    let mut inputs: Vec<FileCounts> =
        serde_json::from_value(first["inputs"].clone()).context("shard manifest: inputs")?;
    for c in inputs.iter_mut() {
        (c.records, c.signals, c.rejects) = (0, 0, 0);
    }
    let mut stats = RunStats::default();
    let mut tallies = crate::pipeline::source_tallies(plan);
    let mut warnings: Vec<String> = Vec::new();
    let mut sentences_scored = 0;
    let mut score_s = 0.0;
    let mut model_load_s: f64 = 0.0;
    let mut started_at = chrono::Utc::now();
    let mut shard_list = Vec::new();
    for s in &shards {
        let m = &s.manifest;
        let these: Vec<FileCounts> = serde_json::from_value(m["inputs"].clone())
            .with_context(|| format!("{}: inputs", s.shown.join(MANIFEST).display()))?;
        if these.len() != inputs.len() {
            return Err(StagedError::Damaged {
                path: s.shown.join(MANIFEST),
                message: "a different number of input files than shard 0".into(),
            }
            .into());
        }
        for (a, b) in inputs.iter_mut().zip(&these) {
            a.records += b.records;
            a.signals += b.signals;
            a.rejects += b.rejects;
        }
        for (src, n) in m["merge"]["records"].as_object().into_iter().flatten() {
            *stats.records.entry(src.clone()).or_default() += u64_of(n);
        }
        for (src, per) in m["merge"]["rejects"].as_object().into_iter().flatten() {
            for (reason, n) in per.as_object().into_iter().flatten() {
                *stats
                    .rejects
                    .entry(src.clone())
                    .or_default()
                    .entry(reason.clone())
                    .or_default() += u64_of(n);
            }
        }
        for (name, t) in tallies.iter_mut() {
            let st = &m["sources"][name.as_str()];
            t.records += u64_of(&st["records"]);
            t.signals += u64_of(&st["signals"]);
            t.rejects += u64_of(&st["rejects"]);
            for (reason, n) in st["reasons"].as_object().into_iter().flatten() {
                *t.reasons.entry(reason.clone()).or_default() += u64_of(n);
            }
            // The example of a reason: the one of the lowest shard that has it.
            for (reason, ex) in m["merge"]["examples"][name.as_str()]
                .as_object()
                .into_iter()
                .flatten()
            {
                if let (Some(loc), Some(raw)) = (ex[0].as_str(), ex[1].as_str()) {
                    t.examples
                        .entry(reason.clone())
                        .or_insert_with(|| (loc.to_string(), raw.to_string()));
                }
            }
        }
        for w in m["warnings"].as_array().into_iter().flatten() {
            if let Some(w) = w.as_str() {
                if !warnings.iter().any(|x| x == w) {
                    warnings.push(w.to_string());
                }
            }
        }
        sentences_scored += u64_of(&m["counts"]["sentences_scored"]);
        score_s += m["timings_s"]["score"].as_f64().unwrap_or(0.0);
        model_load_s = model_load_s.max(m["timings_s"]["model_load"].as_f64().unwrap_or(0.0));
        if let Some(t) = m["started_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        {
            started_at = started_at.min(t.with_timezone(&chrono::Utc));
        }
        shard_list.push(json!({
            "shard": s.spec.to_string(),
            "attempt": s.attempt,
            "records": m["counts"]["records"],
            "signals": m["counts"]["signals"],
            "rejects": m["counts"]["rejects"],
            "timings_s": m["timings_s"],
            "threads": m["threads"],
        }));
    }

    // The output lock from here to the commit.
    let mut sink = SinkConfig::new(&plan.out, plan.date, run_id, &model_name)
        .build()
        .context("cannot prepare the output")?;
    sink.declare_standard_partitions();
    let t_adopt = Instant::now();
    let mut adopted = 0u64;
    for s in &shards {
        for f in s.manifest["shard"]["files"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let (Some(table), Some(file)) = (f["table"].as_str(), f["file"].as_str()) else {
                continue;
            };
            let src = s.dir.join(file);
            let base = Path::new(file)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let name = format!(
                "part-s{:04}-{}",
                s.spec.index,
                base.trim_start_matches("part-")
            );
            sink.adopt_file(table, &src, &name, u64_of(&f["rows"]))
                .with_context(|| {
                    format!("cannot place {} into the run", s.shown.join(file).display())
                })?;
            adopted += 1;
        }
    }
    let adopt_s = t_adopt.elapsed().as_secs_f64();

    // Aggregates: every shard's signals replayed in input order (a k-way merge on the order key).
    let t_agg = Instant::now();
    let mut aggregator = AggregateConfig {
        brands: plan.organization.brands.clone(),
        competitors: plan.organization.competitors.clone(),
        min_group_size: plan.min_group_size,
        spike_k: plan.spike_k,
    }
    .build();
    let names: Vec<Arc<str>> = plan
        .sources
        .iter()
        .map(|s| Arc::from(s.name.as_str()))
        .collect();
    let mut readers = Vec::new();
    for s in &shards {
        let p = s.dir.join(AGG_INPUT);
        let shown = s.shown.join(AGG_INPUT);
        readers.push((
            AggRowReader::open(&p).map_err(|e| StagedError::Damaged {
                path: shown.clone(),
                message: e.to_string(),
            })?,
            shown,
            0u64,
        ));
    }
    let mut heap = BinaryHeap::new();
    let mut heads = Vec::new();
    for (i, (r, _, n)) in readers.iter_mut().enumerate() {
        let row = r.next_row()?;
        if let Some(row) = &row {
            heap.push(std::cmp::Reverse((row.q, i)));
            *n += 1;
        }
        heads.push(row);
    }
    let mut last: Option<u64> = None;
    let mut replayed = 0u64;
    while let Some(std::cmp::Reverse((q, i))) = heap.pop() {
        let row = heads[i].take().expect("a head per heap entry");
        if last.is_some_and(|l| l >= q) {
            return Err(StagedError::Damaged {
                path: readers[i].1.clone(),
                message: format!(
                    "signal order key {q} seen twice or out of order (two shards own one record?)"
                ),
            }
            .into());
        }
        last = Some(q);
        let (signal, author, brand) = row.replay(&names);
        stats.observe_signal(&signal);
        aggregator.observe_prepared(&signal, author, brand);
        replayed += 1;
        let (r, _, n) = &mut readers[i];
        if let Some(next) = r.next_row()? {
            heap.push(std::cmp::Reverse((next.q, i)));
            *n += 1;
            heads[i] = Some(next);
        }
    }
    for (s, (_, p, n)) in shards.iter().zip(&readers) {
        let expected = u64_of(&s.manifest["shard"]["aggregate_input"]["rows"]);
        if *n != expected || expected != u64_of(&s.manifest["counts"]["signals"]) {
            return Err(StagedError::Damaged {
                path: p.clone(),
                message: format!("{n} rows where the shard manifest says {expected}"),
            }
            .into());
        }
    }
    for (table, batch) in aggregator
        .finish(&plan.out, plan.date)
        .context("cannot compute aggregates")?
    {
        sink.write_table(&table, &batch)
            .with_context(|| format!("cannot write {table}"))?;
    }
    let aggregate_s = t_agg.elapsed().as_secs_f64();
    crate::publish::fault::point("aggregate:done").context("cannot write the aggregates")?;

    // Guard rails over the whole night.
    let previous = sink.previous_manifest();
    if !opts.allow_rejects {
        guard::check(&tallies, &plan.guard.max_reject_ratio, previous.as_ref())?;
    }
    sink.finish_files().context("cannot write Parquet")?;

    let total_s = started.elapsed().as_secs_f64();
    let records: u64 = inputs.iter().map(|c| c.records).sum();
    let wall = (chrono::Utc::now() - started_at).num_milliseconds() as f64 / 1000.0;
    let mut manifest = crate::pipeline::manifest_json(&crate::pipeline::ManifestParts {
        run_id,
        plan,
        started_at,
        model: first["model"].clone(),
        inputs: &inputs,
        stats: &stats,
        sentences_scored,
        timings: json!({
            "model_load": model_load_s,
            "score": score_s,
            "aggregate": aggregate_s,
            "commit_place_files": adopt_s,
            "commit_total": total_s,
            "total": wall,
        }),
        records_per_second: if wall > 0.0 {
            records as f64 / wall
        } else {
            0.0
        },
        warnings: &warnings,
        tallies: &tallies,
        allow_rejects: opts.allow_rejects,
        lineage: first["lineage"].clone(),
    });
    manifest["shards"] = json!({
        "count": shards.len(),
        "files_placed": adopted,
        "signals_replayed": replayed,
        "list": shard_list,
    });
    let published = sink
        .commit(&mut manifest)
        .context("cannot publish the output")?;
    Ok((
        CommitOutcome {
            run_id: run_id.into(),
            stats,
            published,
            shards: shards.len() as u32,
            warnings,
            already_committed: false,
            picked: shards
                .iter()
                .map(|s| (s.spec, s.attempt.clone(), s.ignored))
                .collect(),
        },
        manifest,
    ))
}
