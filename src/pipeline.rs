//! The nightly run: read every source, route, score, enrich, write, aggregate, publish.
//!
//! Threads overlap I/O with inference: a reader fills bounded chunks, the main thread routes and
//! tokenizes them into the batch queue ([`crate::batch`]: batches formed continuously across chunk
//! boundaries, one per free model replica) and enriches each chunk once it comes back scored, a
//! writer thread streams Parquet. Channels are bounded, so memory stays flat whatever the input
//! size.

use crate::aggregate::AggregateConfig;
use crate::config::{Plan, SourcePlan};
use crate::enrich::EnrichConfig;
use crate::ingest::{self, IngestError, Item};
use crate::lang;
use crate::progress::Progress;
use crate::publish::guard::{self, SourceTally};
use crate::publish::lineage;
use crate::record::{InputRecord, Reject, RejectReason, Signal};
use crate::route::Router;
use crate::score::ScorerConfig;
use crate::sink::{Published, SinkConfig};
use crate::summary::RunStats;
use anyhow::{Context, Result};
use crossbeam_channel::bounded;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

/// Rows per source sampled by [`ingest::absent_fields`] in `run` and `validate`.
pub const FIELD_SAMPLE: usize = 1000;

/// Records per chunk handed from the reader to the scorer.
pub const CHUNK: usize = 4096;

/// Runtime options that are not part of the plan.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub progress: bool,
    /// Publish even when a guard rail ([`crate::publish::guard`]) would stop the run.
    pub allow_rejects: bool,
    /// `--run-id` (validated); a new id when absent.
    pub run_id: Option<String>,
    /// `--shard I/N`: score only this slice and stage it for `pulso commit` ([`crate::shard`]).
    pub shard: Option<crate::shard::ShardSpec>,
}

/// Per input file counts for the manifest.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct FileCounts {
    pub source: String,
    pub file: PathBuf,
    pub records: u64,
    pub signals: u64,
    pub rejects: u64,
}

/// What a run did.
#[derive(Debug)]
pub struct RunOutcome {
    pub run_id: String,
    pub stats: RunStats,
    pub files: Vec<FileCounts>,
    pub published: Published,
    pub warnings: Vec<String>,
    /// What a `--shard` run staged (then nothing is published and `published` is empty).
    pub staged: Option<crate::shard::StagedShard>,
}

/// A run id: UTC start time plus a few random hex digits.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let salt = xxhash_rust::xxh3::xxh3_64(format!("{:?}{}", now, std::process::id()).as_bytes());
    format!("{}-{:06x}", now.format("%Y%m%dT%H%M%SZ"), salt & 0xff_ffff)
}

/// Flat list of (source index, file) in reading order.
fn file_list(plan: &Plan) -> Vec<(usize, PathBuf)> {
    plan.sources
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.files.iter().map(move |f| (i, f.clone())))
        .collect()
}

/// Drops repeated (source, id) pairs. Remembers only a 64-bit hash per record (9 bytes per table
/// slot, 1–2 slots per record: 1M records ≈ 19 MB); a false duplicate needs two of ~10M ids to collide
/// (probability ≈ 3·10⁻⁶ per 10M-record run) and would still land in the rejects, not be lost.
#[derive(Default)]
pub struct Dedup {
    seen: HashSet<u64>,
}

impl Dedup {
    /// Sized for `rows` records up front, so the table never doubles (and briefly holds old and
    /// new tables) in the middle of a large run. Capped at 100M rows; a bad estimate only costs a
    /// regrowth.
    pub fn with_capacity(rows: u64) -> Dedup {
        Dedup {
            seen: HashSet::with_capacity(rows.min(100_000_000) as usize),
        }
    }

    /// True if this (source, id) was seen before.
    pub fn is_duplicate(&mut self, r: &InputRecord) -> bool {
        let mut key = Vec::with_capacity(r.source.len() + r.id.len() + 1);
        key.extend_from_slice(r.source.as_bytes());
        key.push(0);
        key.extend_from_slice(r.id.as_bytes());
        !self.seen.insert(xxhash_rust::xxh3::xxh3_64(&key))
    }
}

fn duplicate(r: InputRecord) -> Reject {
    Reject {
        source: r.source,
        location: r.location,
        raw: r.raw,
        reason: RejectReason::Duplicate,
    }
}

/// Replaces every e-mail address in `raw` with `[email:PSEUDONYM]` (or `[email]` without a key),
/// so rejected internal records keep their shape for debugging without exposing who wrote them.
///
/// ```
/// let r = pulso::pipeline::redact_emails("r9,Ana <ana.s@acme.com>,oops", None);
/// assert_eq!(r, "r9,Ana <[email]>,oops");
/// ```
pub fn redact_emails(raw: &str, key: Option<&[u8]>) -> String {
    crate::redact::redact_emails(raw, key)
}

/// What the reader thread sends: a chunk of (file index, position in the file, item), or the
/// first file that cannot be read (with its index).
type ReadChunk = Result<Vec<(usize, u64, Item)>, (usize, IngestError)>;

/// Spawns the reader: chunks of (file index, position, item), or the first file that cannot be
/// read. With a shard, only the items that shard owns are sent.
fn spawn_reader(
    plan: &Plan,
    progress: Progress,
    shard: Option<crate::shard::ShardSpec>,
) -> (
    crossbeam_channel::Receiver<ReadChunk>,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = bounded(4);
    let files = file_list(plan);
    let sources: Vec<SourcePlan> = plan.sources.clone();
    let h = std::thread::spawn(move || {
        let _cpu = crate::cputime::Span::new(crate::cputime::Stage::Read);
        let mut chunk = Vec::with_capacity(CHUNK);
        for (fi, (si, path)) in files.iter().enumerate() {
            let rows = match ingest::open(&sources[*si], path).and_then(|r| {
                crate::publish::fault::point("read:open")
                    .map(|_| r)
                    .map_err(|err| IngestError::Io {
                        path: path.clone(),
                        err,
                    })
            }) {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err((fi, e)));
                    return;
                }
            };
            for (ordinal, row) in rows.enumerate() {
                match row {
                    Ok(item) => {
                        progress.read.inc(1);
                        if let Some(sh) = &shard {
                            let mine = match &item {
                                Item::Record(r) => sh.owns_record(&r.source, &r.id),
                                Item::Reject(r) => sh.owns_reject(&r.source, &r.location),
                            };
                            if !mine {
                                continue;
                            }
                        }
                        chunk.push((fi, ordinal as u64, item));
                        if chunk.len() == CHUNK
                            && crate::publish::fault::point("read:chunk").is_ok()
                            && tx
                                .send(Ok(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))))
                                .is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err((fi, e)));
                        return;
                    }
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.send(Ok(chunk));
        }
    });
    (rx, h)
}

/// Runs the pipeline and publishes its output. Errors leave the published output untouched.
pub fn run(plan: &Plan, opts: &RunOptions) -> Result<RunOutcome> {
    let started = Instant::now();
    let cpu_before = (crate::cputime::snapshot(), crate::cputime::process_s());
    let started_at = chrono::Utc::now();
    let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);

    let router = Router::build(&plan.organization, plan.roster.as_deref())
        .context("cannot read the roster")?;
    // Mapped fields that match nothing in a sample of each source (a wrong dotted path, say).
    let field_warnings: Vec<String> = plan
        .sources
        .iter()
        .flat_map(|s| ingest::absent_fields(s, FIELD_SAMPLE))
        .collect();
    let key = std::env::var("PULSO_PSEUDONYM_KEY")
        .ok()
        .filter(|k| !k.is_empty())
        .map(String::into_bytes);
    let enricher = EnrichConfig {
        brands: plan.organization.brands.clone(),
        competitors: plan.organization.competitors.clone(),
        topics_path: plan.topics.clone(),
        pseudonym_key: key.clone(),
    }
    .build()
    .context("cannot build the enrichment stage")?;
    let mut aggregator = AggregateConfig {
        brands: plan.organization.brands.clone(),
        competitors: plan.organization.competitors.clone(),
        min_group_size: plan.min_group_size,
        spike_k: plan.spike_k,
    }
    .build();

    // Internal services and aspects (issue #14).
    let services = crate::services::Services::build(&plan.services)
        .context("cannot build the provider and aspect stage")?;
    let mut sentences_scored = 0u64;

    let t_model = Instant::now();
    let scorer = std::sync::Arc::new(
        ScorerConfig {
            model: plan.model.clone(),
            device: plan.device,
            precision: plan.precision,
            max_tokens: plan.max_tokens,
            threads: plan.threads,
        }
        .build()
        .with_context(|| format!("cannot load the model {}", plan.model))?,
    );
    let model_load_s = t_model.elapsed().as_secs_f64();
    // The model's share of the cores was decided when the replicas started; tokenization gets
    // the rest of the split (crate::batch::Cores).
    let cores = crate::batch::Cores::cpu(scorer.info().threads, 0, Some(scorer.info().replicas));
    let model_name = scorer.info().name.clone();

    // A shard stages its slice for `pulso commit` and takes no output lock ([`crate::shard`]).
    let mut agg_rows = None;
    let sink = match opts.shard {
        Some(spec) => {
            let stage = crate::shard::Stage::create(&plan.out, &run_id, spec, &model_name)?;
            let p = stage.dir.join(crate::shard::AGG_INPUT);
            agg_rows = Some(
                crate::shard::AggRowWriter::create(&p)
                    .with_context(|| format!("cannot create {}", p.display()))?,
            );
            Writer::Stage(stage)
        }
        None => {
            let mut sink = SinkConfig::new(&plan.out, plan.date, &run_id, &model_name)
                .format(plan.output_format)
                .build()
                .context("cannot prepare the output")?;
            sink.declare_standard_partitions();
            Writer::Publish(sink)
        }
    };

    let files = file_list(plan);
    let total: u64 = files
        .iter()
        .map(|(si, f)| ingest::estimate_rows(plan.sources[*si].format, f))
        .sum();
    let progress = Progress::new(opts.progress, total);
    let mut tallies = source_tallies(plan);
    let mut counts: Vec<FileCounts> = files
        .iter()
        .map(|(si, f)| FileCounts {
            source: plan.sources[*si].name.clone(),
            file: f.clone(),
            ..Default::default()
        })
        .collect();

    // Writer thread: owns the sink while records flow.
    let (wtx, wrx) = bounded::<(Vec<Signal>, Vec<Reject>)>(2);
    let write_bar = progress.write.clone();
    let writer = std::thread::spawn(move || -> Result<Writer> {
        let _cpu = crate::cputime::Span::new(crate::cputime::Stage::Write);
        let mut sink = sink;
        for (signals, rejects) in wrx {
            sink.write_signals(&signals)?;
            sink.write_rejects(&rejects)?;
            write_bar.inc((signals.len() + rejects.len()) as u64);
        }
        Ok(sink)
    });

    let (rx, reader) = spawn_reader(plan, progress.clone(), opts.shard);
    let mut stats = RunStats::default();
    for s in &plan.sources {
        stats.records.insert(s.name.clone(), 0);
    }
    let mut dedup = Dedup::with_capacity(total / opts.shard.map_or(1, |s| s.count as u64));
    let mut failure: Option<anyhow::Error> = None;

    // Scoring is one continuous stream (crate::batch): chunks are routed and tokenized here, the
    // batch queue forms batches across chunk boundaries for the replicas, and each chunk comes
    // back scored, in input order, for enrichment and the writer.
    let t_score = Instant::now();
    let score_bar = progress.score.clone();
    let mut stream = Some(
        crate::batch::Stream::start(scorer.clone(), move |n| score_bar.inc(n))
            .context("cannot start the scoring stage")?,
    );
    let tokenize_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cores.rayon)
        .thread_name(|i| format!("pulso-tokenize-{i}"))
        .build()
        .context("cannot start the tokenizer threads")?;
    // Chunks sent to the stream and not yet back: their records, rejects and sentences.
    let mut admitted: std::collections::VecDeque<Admitted> = Default::default();
    // The next chunk, tokenized, waiting for room in the queue.
    let mut ready: Option<crate::batch::ChunkIn> = None;
    let mut reader_done = false;
    while failure.is_none() {
        let Some(st) = stream.as_mut() else { break };
        if reader_done && ready.is_none() {
            st.close_input();
            if admitted.is_empty() {
                break;
            }
        }
        let mut sel = crossbeam_channel::Select::new();
        let read_op = (ready.is_none() && !reader_done).then(|| sel.recv(&rx));
        let send_op = match (&ready, st.input()) {
            (Some(_), Some(tx)) => Some(sel.send(tx)),
            _ => None,
        };
        let done_op = (!admitted.is_empty()).then(|| sel.recv(st.output()));
        let op = sel.select();
        let idx = Some(op.index());
        if idx == read_op {
            let chunk = match op.recv(&rx) {
                Ok(Ok(c)) => c,
                Ok(Err((fi, e))) => {
                    failure = Some(anyhow::Error::new(e).context(format!(
                        "source '{}': cannot read an input file (nothing was published)",
                        counts[fi].source
                    )));
                    break;
                }
                Err(_) => {
                    reader_done = true;
                    continue;
                }
            };
            let mut rejects = Vec::new();
            let mut accepted: Vec<(usize, u64, InputRecord)> = Vec::with_capacity(chunk.len());
            for (fi, ordinal, item) in chunk {
                counts[fi].records += 1;
                tallies[files[fi].0].1.records += 1;
                *stats.records.entry(counts[fi].source.clone()).or_default() += 1;
                match item {
                    Item::Reject(r) => {
                        counts[fi].rejects += 1;
                        rejects.push(r);
                    }
                    Item::Record(r) if dedup.is_duplicate(&r) => {
                        counts[fi].rejects += 1;
                        rejects.push(duplicate(r));
                    }
                    Item::Record(r) => accepted.push((fi, ordinal, r)),
                }
            }
            for r in rejects.iter_mut() {
                // A rejected internal record must not leak the author's identity through `raw`.
                let si = plan
                    .sources
                    .iter()
                    .position(|s| *s.name == *r.source)
                    .unwrap_or(0);
                if plan.sources[si].fixed_segment() != Some(crate::record::Segment::External) {
                    r.raw = crate::redact::redact_raw(&r.raw, key.as_deref());
                    crate::privacy::apply_reject(plan.internal_text, true, r);
                }
                tallies[si].1.reject(r.reason.code(), &r.location, &r.raw);
            }
            let texts: Vec<&str> = accepted.iter().map(|(_, _, r)| r.text.as_str()).collect();
            // Whole texts and their sentences go to the model together (same token-budget batches).
            let sentences = crate::services::aspects::SentenceBatch::new(&texts, services.aspects);
            sentences_scored += sentences.extra() as u64;
            let encoded = crate::publish::fault::point("score:chunk")
                .map_err(anyhow::Error::from)
                .and_then(|_| {
                    tokenize_pool.install(|| scorer.spec().encode(&sentences.texts(&texts)))
                });
            let encoded = match encoded {
                Ok(e) => e,
                Err(e) => {
                    failure = Some(e.context("scoring failed (nothing was published)"));
                    break;
                }
            };
            progress.score.inc(rejects.len() as u64);
            let counted = texts.len();
            drop(texts);
            admitted.push_back(Admitted {
                truncated: encoded.iter().map(|e| e.truncated).collect(),
                accepted,
                rejects,
                sentences,
            });
            ready = Some(crate::batch::ChunkIn {
                counted,
                texts: encoded,
            });
        } else if idx == send_op {
            let tx = st.input().expect("the input is open while a chunk waits");
            if op
                .send(tx, ready.take().expect("a chunk is ready"))
                .is_err()
            {
                // The queue stopped: its error (or panic) is on the output, read next time round.
                st.close_input();
                reader_done = true;
            }
        } else {
            debug_assert_eq!(idx, done_op);
            let (_, probs) = match op.recv(st.output()) {
                Ok(Ok(done)) => done,
                Ok(Err(e)) => {
                    failure = Some(e.context("scoring failed (nothing was published)"));
                    break;
                }
                Err(_) => {
                    let st = stream.take().expect("the stream is running");
                    failure = Some(
                        st.finish()
                            .err()
                            .unwrap_or_else(|| anyhow::anyhow!("the batch queue stopped early"))
                            .context("scoring failed (nothing was published)"),
                    );
                    break;
                }
            };
            let Admitted {
                accepted,
                rejects,
                sentences,
                truncated,
            } = admitted.pop_front().expect("a chunk was admitted");
            let all: Vec<crate::record::Scored> = probs
                .iter()
                .zip(&truncated)
                .map(|(p, &t)| scorer.spec().labels.to_scored(p, t))
                .collect();
            let scored = sentences.unpack(all, accepted.len());
            let mut signals = Vec::with_capacity(accepted.len());
            for ((fi, ordinal, mut record), (scored, sents)) in accepted.into_iter().zip(scored) {
                let si = files[fi].0;
                let t_route = crate::cputime::thread_ns();
                let routing = router.route(&plan.sources[si], &record);
                if record.department.is_none() {
                    if let Some(e) = record
                        .author
                        .as_deref()
                        .and_then(|a| router.roster_entry(a))
                    {
                        record.department = e.department.clone();
                    }
                }
                let t_enrich = crate::cputime::thread_ns();
                crate::cputime::add(crate::cputime::Stage::Route, t_enrich - t_route);
                let language = record
                    .language
                    .as_deref()
                    .and_then(lang::parse_declared)
                    .unwrap_or_else(|| lang::detect(&record.text));
                let mut enrichment = enricher.enrich(&record, &routing, language, &scored);
                let taxonomy = enricher.taxonomy();
                services.annotate(
                    &plan.sources[si],
                    &record,
                    &routing,
                    taxonomy,
                    &sents,
                    &mut enrichment,
                );
                let signal = Signal {
                    record,
                    routing,
                    language,
                    scored,
                    enrichment,
                };
                counts[fi].signals += 1;
                tallies[si].1.signals += 1;
                stats.observe_signal(&signal);
                match agg_rows.as_mut() {
                    // A shard stages what the aggregates need; the commit replays it in input order.
                    Some(w) => {
                        let row = crate::shard::AggRow::capture(
                            crate::shard::seq(fi, ordinal),
                            si,
                            &signal,
                            &aggregator,
                        );
                        if let Err(e) = w.push(&row) {
                            failure = Some(
                                anyhow::Error::new(e).context("cannot write the aggregate input"),
                            );
                        }
                    }
                    None => aggregator.observe(&signal),
                }
                signals.push(signal);
                crate::cputime::add(
                    crate::cputime::Stage::Enrich,
                    crate::cputime::thread_ns().saturating_sub(t_enrich),
                );
            }
            for r in &rejects {
                stats.observe_reject(r);
            }
            crate::privacy::apply(plan.internal_text, &mut signals);
            if failure.is_some() || wtx.send((signals, rejects)).is_err() {
                break; // the writer failed; its error is reported below
            }
        }
    }
    let score_s = t_score.elapsed().as_secs_f64();
    // Stop the queue (what it still holds is dropped) and hear of a panic in it.
    if let Some(st) = stream.take() {
        if let Err(e) = st.finish() {
            failure.get_or_insert(e.context("scoring failed (nothing was published)"));
        }
    }
    drop(rx);
    drop(wtx);
    // A reader panic closes the channel like the end of input: it must fail the run, not publish
    // a partial output.
    if let Err(p) = reader.join() {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        failure.get_or_insert_with(|| {
            anyhow::anyhow!("the input reader thread panicked: {msg} (nothing was published)")
        });
    }
    let sink = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?
        .context("cannot write Parquet")?;
    if let Some(e) = failure {
        sink.abort();
        return Err(e);
    }
    let mut sink = match sink {
        Writer::Publish(sink) => sink,
        Writer::Stage(stage) => {
            progress.finish();
            let mut warnings = field_warnings;
            warnings.extend(enricher.warnings());
            let agg = agg_rows
                .take()
                .expect("a shard has an aggregate input")
                .finish()
                .context("cannot write the aggregate input")?;
            let total_s = started.elapsed().as_secs_f64();
            let records: u64 = counts.iter().map(|c| c.records).sum();
            let lineage = lineage::lineage(
                &plan.pipeline_path,
                plan.roster.as_deref(),
                plan.topics.as_deref(),
                &plan.model,
                &scorer.info().path,
            );
            let manifest = manifest_json(&ManifestParts {
                run_id: &run_id,
                plan,
                started_at,
                model: scorer.manifest_model(),
                inputs: &counts,
                stats: &stats,
                sentences_scored,
                timings: serde_json::json!({
                    "model_load": model_load_s,
                    "score": score_s,
                    "total": total_s,
                }),
                records_per_second: if total_s > 0.0 {
                    records as f64 / total_s
                } else {
                    0.0
                },
                warnings: &warnings,
                tallies: &tallies,
                allow_rejects: opts.allow_rejects,
                lineage,
            });
            let staged = stage.finish(
                crate::shard::commit::shard_manifest(manifest, &stats, &tallies, plan),
                agg,
            )?;
            return Ok(RunOutcome {
                run_id,
                stats,
                files: counts,
                published: Published::default(),
                warnings,
                staged: Some(staged),
            });
        }
    };

    let t_agg = Instant::now();
    let cpu_agg = crate::cputime::Span::new(crate::cputime::Stage::Aggregate);
    for (table, batch) in aggregator
        .finish(&sink.history_root(), plan.date)
        .context("cannot compute aggregates")?
    {
        sink.write_table(&table, &batch)
            .with_context(|| format!("cannot write {table}"))?;
    }
    let aggregate_s = t_agg.elapsed().as_secs_f64();
    drop(cpu_agg);
    progress.finish();
    let mut warnings = field_warnings;
    warnings.extend(enricher.warnings());
    crate::publish::fault::point("aggregate:done").context("cannot write the aggregates")?;

    // Guard rails: a source gone bad must not replace last night's good partitions.
    let previous = sink.previous_manifest();
    if !opts.allow_rejects {
        guard::check(&tallies, &plan.guard.max_reject_ratio, previous.as_ref())?;
    }
    sink.finish_files().context("cannot write Parquet")?;

    let total_s = started.elapsed().as_secs_f64();
    let records: u64 = counts.iter().map(|c| c.records).sum();
    // CPU seconds per stage (summed over threads) and the process total; "other" is model load,
    // the precision probe, dedup and bookkeeping.
    let cpu_stages = crate::cputime::since(&cpu_before.0);
    let cpu_total = crate::cputime::process_s() - cpu_before.1;
    let mut cpu_s: serde_json::Map<String, serde_json::Value> = cpu_stages
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
        .collect();
    let staged: f64 = cpu_stages.iter().map(|(_, v)| v).sum();
    cpu_s.insert(
        "other".into(),
        serde_json::json!((cpu_total - staged).max(0.0)),
    );
    cpu_s.insert("process_total".into(), serde_json::json!(cpu_total));
    let mut manifest = serde_json::json!({
        "run_id": run_id,
        "pipeline": plan.name,
        "pipeline_file": plan.pipeline_path,
        "config_hash": plan.config_hash,
        "date": plan.date.format("%Y-%m-%d").to_string(),
        "started_at": started_at.to_rfc3339(),
        "finished_at": chrono::Utc::now().to_rfc3339(),
        "pulso_version": env!("CARGO_PKG_VERSION"),
        "model": scorer.manifest_model(),
        "threads": plan.threads,
        "cores": cores,
        "inputs": counts,
        "counts": {
            "records": records,
            "signals": stats.total_signals(),
            "rejects": stats.total_rejects(),
            "segments": {
                "internal": stats.segment_signals(crate::record::Segment::Internal),
                "external": stats.segment_signals(crate::record::Segment::External),
            },
            "reject_reasons": stats.rejects_by_reason(),
            "truncated": stats.truncated,
            "sentences_scored": sentences_scored,
        },
        "timings_s": {
            "model_load": model_load_s,
            "score": score_s,
            "aggregate": aggregate_s,
            "total": total_s,
        },
        "cpu_s": cpu_s,
        "records_per_second": if total_s > 0.0 { records as f64 / total_s } else { 0.0 },
        "warnings": warnings,
        "sources": tallies.iter().cloned().collect::<BTreeMap<_, _>>(),
        "allow_rejects": opts.allow_rejects,
        "lineage": lineage::lineage(
            &plan.pipeline_path,
            plan.roster.as_deref(),
            plan.topics.as_deref(),
            &plan.model,
            &scorer.info().path,
        ),
        "privacy": { "internal_text": plan.internal_text },
    });
    let published = sink
        .commit(&mut manifest)
        .context("cannot publish the output")?;
    Ok(RunOutcome {
        run_id,
        stats,
        files: counts,
        published,
        warnings,
        staged: None,
    })
}

/// A chunk inside the scoring stream: what its enrichment needs once its scores are back.
struct Admitted {
    accepted: Vec<(usize, u64, InputRecord)>,
    rejects: Vec<Reject>,
    sentences: crate::services::aspects::SentenceBatch,
    truncated: Vec<bool>,
}

/// Where a run's rows go: the output (one commit at the end) or a shard's staging area.
enum Writer {
    Publish(crate::sink::Sink),
    Stage(crate::shard::Stage),
}

impl Writer {
    fn write_signals(&mut self, s: &[Signal]) -> Result<()> {
        match self {
            Writer::Publish(w) => Ok(w.write_signals(s)?),
            Writer::Stage(w) => w.write_signals(s),
        }
    }
    fn write_rejects(&mut self, r: &[Reject]) -> Result<()> {
        match self {
            Writer::Publish(w) => Ok(w.write_rejects(r)?),
            Writer::Stage(w) => w.write_rejects(r),
        }
    }
    fn abort(self) {
        match self {
            Writer::Publish(w) => w.abort(),
            Writer::Stage(w) => w.abort(),
        }
    }
}

/// One [`SourceTally`] per source of the plan, in plan order, with its column mapping.
pub(crate) fn source_tallies(plan: &Plan) -> Vec<(String, SourceTally)> {
    plan.sources
        .iter()
        .map(|s| {
            let columns = match serde_json::to_value(&s.columns) {
                Ok(serde_json::Value::Object(m)) => m
                    .into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|c| (k, c.to_string())))
                    .collect(),
                _ => BTreeMap::new(),
            };
            (
                s.name.clone(),
                SourceTally {
                    columns,
                    ..Default::default()
                },
            )
        })
        .collect()
}

/// What goes into a run manifest (a single-process run, a shard, or a sharded run's commit).
pub(crate) struct ManifestParts<'a> {
    pub run_id: &'a str,
    pub plan: &'a Plan,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub model: serde_json::Value,
    pub inputs: &'a [FileCounts],
    pub stats: &'a RunStats,
    pub sentences_scored: u64,
    pub timings: serde_json::Value,
    pub records_per_second: f64,
    pub warnings: &'a [String],
    pub tallies: &'a [(String, SourceTally)],
    pub allow_rejects: bool,
    pub lineage: serde_json::Value,
}

/// The run manifest of a shard and of a sharded run's commit: the members of a single-process
/// run's manifest (built in [`run`]; keep the two in step), the commit adds `commit`.
pub(crate) fn manifest_json(p: &ManifestParts) -> serde_json::Value {
    let (plan, stats) = (p.plan, p.stats);
    let records: u64 = p.inputs.iter().map(|c| c.records).sum();
    serde_json::json!({
        "run_id": p.run_id,
        "pipeline": plan.name,
        "pipeline_file": plan.pipeline_path,
        "config_hash": plan.config_hash,
        "date": plan.date.format("%Y-%m-%d").to_string(),
        "started_at": p.started_at.to_rfc3339(),
        "finished_at": chrono::Utc::now().to_rfc3339(),
        "pulso_version": env!("CARGO_PKG_VERSION"),
        "model": p.model,
        "threads": plan.threads,
        "inputs": p.inputs,
        "counts": {
            "records": records,
            "signals": stats.total_signals(),
            "rejects": stats.total_rejects(),
            "segments": {
                "internal": stats.segment_signals(crate::record::Segment::Internal),
                "external": stats.segment_signals(crate::record::Segment::External),
            },
            "reject_reasons": stats.rejects_by_reason(),
            "truncated": stats.truncated,
            "sentences_scored": p.sentences_scored,
        },
        "timings_s": p.timings,
        "records_per_second": p.records_per_second,
        "warnings": p.warnings,
        "sources": p.tallies.iter().cloned().collect::<BTreeMap<_, _>>(),
        "allow_rejects": p.allow_rejects,
        "lineage": p.lineage,
        "privacy": { "internal_text": plan.internal_text },
    })
}

/// What `pulso validate` found.
#[derive(Debug, Default)]
pub struct Validation {
    pub stats: RunStats,
    /// source → reason → up to 5 (location, detail) examples.
    pub examples: BTreeMap<String, BTreeMap<String, Vec<(String, String)>>>,
    /// (source, segment) → records routed there.
    pub routed: BTreeMap<(String, String), u64>,
    /// Mapped fields absent or null in every sampled row, one line each.
    pub warnings: Vec<String>,
}

/// Reads every source and routes every record, without the model; writes nothing.
pub fn validate(plan: &Plan) -> Result<Validation> {
    let router = Router::build(&plan.organization, plan.roster.as_deref())
        .context("cannot read the roster")?;
    let mut v = Validation {
        warnings: plan
            .sources
            .iter()
            .flat_map(|s| ingest::absent_fields(s, FIELD_SAMPLE))
            .collect(),
        ..Default::default()
    };
    let mut dedup = Dedup::default();
    for s in &plan.sources {
        v.stats.records.insert(s.name.clone(), 0);
        for f in &s.files {
            let rows = ingest::open(s, f)?;
            for row in rows {
                let item = row?;
                *v.stats.records.entry(s.name.clone()).or_default() += 1;
                let reject = match item {
                    Item::Reject(r) => r,
                    Item::Record(r) if dedup.is_duplicate(&r) => duplicate(r),
                    Item::Record(r) => {
                        let routing = router.route(s, &r);
                        *v.routed
                            .entry((s.name.clone(), routing.segment.to_string()))
                            .or_default() += 1;
                        continue;
                    }
                };
                v.stats.observe_reject(&reject);
                let ex = v
                    .examples
                    .entry(s.name.clone())
                    .or_default()
                    .entry(reject.reason.code())
                    .or_default();
                if ex.len() < 5 {
                    ex.push((reject.location.clone(), reject.reason.detail()));
                }
            }
        }
    }
    Ok(v)
}
