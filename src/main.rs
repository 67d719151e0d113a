//! The `pulso` command line: parse flags, build one validated plan, hand it to the library.

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use pulso::config::{Overrides, Plan};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes: 0 success, 1 finished but some records were rejected (output still published),
/// 2 unusable config, input or model (nothing published).
const EXIT_REJECTS: u8 = 1;
const EXIT_UNUSABLE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "pulso",
    version,
    about = "Sentiment of internal and external client signals, as partitioned Parquet"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a pipeline: read, route, score, enrich and publish Parquet.
    Run {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// Logical date of the run (partition key), default today in UTC.
        #[arg(long, value_parser = parse_date)]
        date: Option<NaiveDate>,
        /// Output root, overriding [pipeline] output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Model folder or hub id, overriding [model] path.
        #[arg(long)]
        model: Option<String>,
        /// CPU threads for inference (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// No progress bars.
        #[arg(long)]
        no_progress: bool,
        /// Publish this run even if a source exceeds its max_reject_ratio or yields no signals
        /// where the previous run had some.
        #[arg(long)]
        allow_rejects: bool,
        /// Run id of this run (letters, digits, . _ -); needed with --shard, the same for every shard.
        #[arg(long)]
        run_id: Option<String>,
        /// Score only slice I of N (e.g. 3/7) and stage it for `pulso commit`; `auto` reads
        /// JOB_COMPLETION_INDEX and PULSO_SHARD_COUNT (a Kubernetes Indexed Job).
        #[arg(long)]
        shard: Option<String>,
        /// With --shard: when this shard finds all N shards staged, it commits the run itself
        /// (safe on one file system: the commit holds the output lock; a shard that finds the
        /// lock taken leaves the commit to its holder).
        #[arg(long, requires = "shard")]
        commit_when_complete: bool,
    },
    /// Publish a sharded run: check every shard's staged output, compute the aggregates, commit once.
    Commit {
        /// The pipeline file the shards ran (same file, --model, --date and --out).
        pipeline: PathBuf,
        /// The run id every shard was started with.
        #[arg(long)]
        run_id: String,
        #[arg(long, value_parser = parse_date)]
        date: Option<NaiveDate>,
        #[arg(long)]
        out: Option<PathBuf>,
        /// The --model the shards were given (part of the configuration hash).
        #[arg(long)]
        model: Option<String>,
        /// The shard count to expect (default: as staged).
        #[arg(long)]
        shards: Option<u32>,
        #[arg(long)]
        allow_rejects: bool,
        /// Accepted for scripts that pass it to every subcommand (commit draws no bars).
        #[arg(long)]
        no_progress: bool,
    },
    /// Check the pipeline file and read every source; report what would be rejected. Writes nothing.
    Validate {
        pipeline: PathBuf,
        /// Accepted for scripts that pass it to every subcommand (validate draws no bars).
        #[arg(long)]
        no_progress: bool,
    },
    /// Score texts ad hoc: one text per line, or JSON Lines with a `text` field; prints JSON Lines.
    Score {
        /// Input file, or - for standard input.
        #[arg(default_value = "-")]
        input: String,
        /// Model folder or hub id (default: PULSO_MODEL or the shipped pulso-multi).
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        threads: Option<usize>,
        /// fp32, bf16, int8 or auto (bf16 on CPUs with AMX / AVX512-BF16, elsewhere int8 with near ties
        /// re-scored in fp32, each only if a probe set agrees; fp32 on a GPU).
        #[arg(long, default_value = "auto")]
        precision: String,
        /// auto (a GPU when libtorch sees one), cpu or cuda.
        #[arg(long, default_value = "auto")]
        device: pulso::score::DeviceChoice,
        /// Accepted for scripts that pass it to every subcommand (score draws no bars).
        #[arg(long)]
        no_progress: bool,
        /// Read an Arrow IPC stream (a text column and any others) and write it back as an Arrow
        /// IPC stream with the score columns added, batch by batch (Spark's mapInArrow: see
        /// deploy/spark/README.md).
        #[arg(long)]
        arrow: bool,
        /// With --arrow: the column that holds the text.
        #[arg(long, default_value = "text", requires = "arrow")]
        text_column: String,
    },
    /// Measure a model on a labelled file (CSV, TSV or JSON Lines).
    Eval(pulso::eval::EvalArgs),
    /// Print where the current version of an output lives (folder or s3://, gs://, az:// URL), for
    /// readers such as DuckDB, Polars or Spark: read TREE/signals/**/*.parquet with Hive partitioning.
    Current {
        /// Output root: a folder or an object-store URL.
        out: PathBuf,
        /// Print version, run id, tree and manifest as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Marketing and HR tables from a published output; optionally a self-contained HTML report.
    Report {
        out: PathBuf,
        #[arg(long, value_parser = parse_date)]
        date: Option<NaiveDate>,
        #[arg(long)]
        html: Option<PathBuf>,
        /// Accepted for scripts that pass it to every subcommand (report draws no bars).
        #[arg(long)]
        no_progress: bool,
    },
}

/// A run date: exactly `YYYY-MM-DD`, a real calendar date, year 1990 to 9999.
fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|_| shape_ok)
        .ok_or_else(|| format!("{s:?} is not a calendar date; use YYYY-MM-DD"))?;
    pulso::config::check_run_date(d)?;
    Ok(d)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pulso: error: {e:#}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

fn configure_threads(threads: usize) {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build_global();
}

fn dispatch(cli: Cli) -> Result<u8> {
    match cli.cmd {
        Cmd::Run {
            pipeline,
            date,
            out,
            model,
            threads,
            no_progress,
            allow_rejects,
            run_id,
            shard,
            commit_when_complete,
        } => {
            let shard = shard
                .as_deref()
                .map(pulso::shard::ShardSpec::parse)
                .transpose()?;
            if let Some(id) = &run_id {
                pulso::shard::validate_run_id(id)?;
            } else if shard.is_some() {
                return Err(pulso::shard::ShardError::NoRunId.into());
            }
            let ov = Overrides {
                date,
                out,
                model,
                threads,
            };
            let plan = Plan::build(&pipeline, &ov)?;
            configure_threads(plan.threads);
            let outcome = pulso::pipeline::run(
                &plan,
                &pulso::pipeline::RunOptions {
                    progress: !no_progress,
                    allow_rejects,
                    run_id,
                    shard,
                },
            )?;
            for w in &outcome.warnings {
                eprintln!("pulso: warning: {w}");
            }
            if let Some(st) = &outcome.staged {
                writeln!(
                    std::io::stdout().lock(),
                    "run {} shard {}: {} records, {} signals, {} rejected -> staged {} (publish with `pulso commit --run-id {}`)",
                    outcome.run_id,
                    st.spec,
                    outcome.files.iter().map(|f| f.records).sum::<u64>(),
                    outcome.stats.total_signals(),
                    outcome.stats.total_rejects(),
                    st.manifest.display(),
                    outcome.run_id
                )?;
                if commit_when_complete
                    && pulso::shard::commit::all_staged(&plan, &outcome.run_id, st.spec.count)
                {
                    return commit_now(
                        &plan,
                        &outcome.run_id,
                        allow_rejects,
                        Some(st.spec.count),
                        true,
                    );
                }
                return Ok(0);
            }
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", outcome.stats.table())?;
            if let Some(n) = pulso::privacy::notice(
                plan.internal_text,
                outcome
                    .stats
                    .segment_signals(pulso::record::Segment::Internal),
            ) {
                writeln!(stdout, "{n}")?;
            }
            let rejected = outcome.stats.total_rejects();
            writeln!(
                stdout,
                "run {}: {} signals, {} rejected{} -> version {}, {}",
                outcome.run_id,
                outcome.stats.total_signals(),
                rejected,
                if rejected > 0 && pulso::storage::is_url_path(&plan.out) {
                    // An object store has no fixed entry: the version's own tree.
                    format!(" (see $(pulso current {})/rejects/)", plan.out.display())
                } else if rejected > 0 {
                    format!(" (see {}/rejects/)", plan.out.display())
                } else {
                    String::new()
                },
                outcome.published.version,
                outcome.published.manifest.display()
            )?;
            Ok(if rejected > 0 { EXIT_REJECTS } else { 0 })
        }
        Cmd::Commit {
            pipeline,
            run_id,
            date,
            out,
            model,
            shards,
            allow_rejects,
            no_progress: _,
        } => {
            let ov = Overrides {
                date,
                out,
                model,
                threads: None,
            };
            let plan = Plan::build(&pipeline, &ov)?;
            commit_now(&plan, &run_id, allow_rejects, shards, false)
        }
        Cmd::Validate {
            pipeline,
            no_progress: _,
        } => {
            let plan = Plan::build(&pipeline, &Overrides::default())?;
            let v = pulso::pipeline::validate(&plan)?;
            let mut o = std::io::stdout().lock();
            writeln!(
                o,
                "{}: configuration OK, {} source(s)",
                pipeline.display(),
                plan.sources.len()
            )?;
            for s in &plan.sources {
                let read = v.stats.records.get(&s.name).copied().unwrap_or(0);
                let rejected: u64 = v
                    .stats
                    .rejects
                    .get(&s.name)
                    .map(|m| m.values().sum())
                    .unwrap_or(0);
                let routed: Vec<String> = v
                    .routed
                    .iter()
                    .filter(|((src, _), _)| src == &s.name)
                    .map(|((_, seg), n)| format!("{seg} {n}"))
                    .collect();
                writeln!(
                    o,
                    "  {}: {} file(s), {} records, {} would be rejected; routed: {}",
                    s.name,
                    s.files.len(),
                    read,
                    rejected,
                    if routed.is_empty() {
                        "-".into()
                    } else {
                        routed.join(", ")
                    }
                )?;
                for w in v
                    .warnings
                    .iter()
                    .filter(|w| w.starts_with(&format!("source '{}':", s.name)))
                {
                    writeln!(o, "    warning: {w}")?;
                }
                if let Some(ex) = v.examples.get(&s.name) {
                    for (reason, list) in ex {
                        for (loc, detail) in list {
                            writeln!(o, "    {reason}: {loc}: {detail}")?;
                        }
                    }
                }
            }
            Ok(if v.stats.total_rejects() > 0 || !v.warnings.is_empty() {
                EXIT_REJECTS
            } else {
                0
            })
        }
        Cmd::Score {
            input,
            model,
            threads,
            precision,
            device,
            no_progress: _,
            arrow,
            text_column,
        } => {
            let mut cfg = pulso::score::ScorerConfig::for_cli(model, threads, &precision)?;
            cfg.device = device;
            configure_threads(cfg.threads);
            let model_name = cfg.model.clone();
            let scorer = std::sync::Arc::new(
                cfg.build()
                    .with_context(|| format!("cannot load the model {model_name}"))?,
            );
            let info = scorer.info();
            let plan = info
                .int8_plan
                .as_ref()
                .map(|p| format!(" (plan {p})"))
                .unwrap_or_default();
            eprintln!(
                "pulso score: model {} on {}, precision {}{plan}, forward {}, {} replica(s), {} thread(s)",
                info.name, info.device, info.precision, info.forward, info.replicas, info.threads
            );
            if arrow {
                return score_arrow(&scorer, &input, text_column);
            }
            let reader: Box<dyn std::io::BufRead + Send> = if input == "-" {
                Box::new(std::io::BufReader::new(std::io::stdin()))
            } else {
                let f =
                    std::fs::File::open(&input).with_context(|| format!("cannot open {input}"))?;
                Box::new(std::io::BufReader::with_capacity(1 << 16, f))
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            pulso::score::score_stream(&scorer, reader, &mut out)?;
            out.flush()?;
            if info.int8_plan.is_some() {
                let st = scorer.stats();
                eprintln!(
                    "pulso score: int8 guard re-scored {} of {} texts in fp32",
                    st.rescored_fp32, st.texts
                );
            }
            Ok(0)
        }
        Cmd::Eval(args) => {
            let cfg = args.scorer_config()?;
            configure_threads(cfg.threads);
            let model_name = cfg.model.clone();
            let scorer = cfg
                .build()
                .with_context(|| format!("cannot load the model {model_name}"))?;
            let report = pulso::eval::evaluate(&args, &scorer)?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            pulso::eval::write_report(&report, args.json, &mut out)?;
            Ok(0)
        }
        Cmd::Current { out, json } => {
            let out = pulso::storage::normalize(out);
            let v = pulso::publish::target::current_version(&out)?.with_context(|| {
                format!(
                    "{} has no committed version; run the pipeline first",
                    out.display()
                )
            })?;
            let mut o = std::io::stdout().lock();
            if json {
                writeln!(o, "{}", serde_json::to_string(&v)?)?;
            } else {
                writeln!(o, "{}", v.tree)?;
            }
            Ok(0)
        }
        Cmd::Report {
            out,
            date,
            html,
            no_progress: _,
        } => {
            let out = pulso::storage::normalize(out);
            pulso::report::run(&out, date, html.as_deref())
                .with_context(|| format!("cannot report on {}", out.display()))?;
            Ok(0)
        }
    }
}

/// `pulso score --arrow`: Arrow IPC stream in (file or standard input), Arrow IPC stream out.
fn score_arrow(scorer: &pulso::score::Scorer, input: &str, text_column: String) -> Result<u8> {
    let opts = pulso::score_arrow::ArrowOptions {
        text_column,
        ..Default::default()
    };
    let reader: Box<dyn std::io::Read> = if input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(input).with_context(|| format!("cannot open {input}"))?)
    };
    let summary =
        pulso::score_arrow::score_arrow_stream(scorer, reader, std::io::stdout().lock(), &opts)
            .with_context(|| {
                format!(
                    "pulso score --arrow on {}",
                    if input == "-" {
                        "standard input"
                    } else {
                        input
                    }
                )
            })?;
    eprintln!("{}", summary.line());
    Ok(0)
}

/// `pulso commit`, also run by the last shard of a run with `--commit-when-complete`.
fn commit_now(
    plan: &Plan,
    run_id: &str,
    allow_rejects: bool,
    shards: Option<u32>,
    from_shard: bool,
) -> Result<u8> {
    let c = match pulso::shard::commit::commit(
        plan,
        run_id,
        &pulso::shard::commit::CommitOptions {
            allow_rejects,
            shards,
        },
    ) {
        Ok(c) => c,
        Err(e)
            if from_shard
                && e.chain().any(|c| {
                    matches!(
                        c.downcast_ref::<pulso::publish::CommitError>(),
                        Some(pulso::publish::CommitError::Locked { .. })
                    ) || matches!(
                        c.downcast_ref::<pulso::sink::SinkError>(),
                        Some(pulso::sink::SinkError::Commit(
                            pulso::publish::CommitError::Locked { .. }
                        ))
                    ) || matches!(
                        c.downcast_ref::<pulso::shard::remote::StoreStagingError>(),
                        Some(pulso::shard::remote::StoreStagingError::Claimed { .. })
                    )
                }) =>
        {
            // Another process (another shard finishing at the same moment) is committing.
            eprintln!("pulso: note: not committing run {run_id} from this shard: {e:#}");
            return Ok(0);
        }
        Err(e) => return Err(e),
    };
    let mut stdout = std::io::stdout().lock();
    if c.already_committed {
        writeln!(
            stdout,
            "run {run_id} is already the committed version of {}; nothing to do",
            plan.out.display()
        )?;
        return Ok(0);
    }
    for w in &c.warnings {
        eprintln!("pulso: warning: {w}");
    }
    // Which attempt of a shard that ran more than once was taken (all are in the manifest).
    for (spec, attempt, ignored) in c.picked.iter().filter(|p| p.2 > 0) {
        eprintln!("pulso: note: shard {spec}: took {attempt}, the latest complete attempt; {ignored} other attempt(s) ignored");
    }
    writeln!(stdout, "{}", c.stats.table())?;
    let rejected = c.stats.total_rejects();
    writeln!(
        stdout,
        "run {}: {} shards, {} signals, {} rejected -> version {}, {}",
        c.run_id,
        c.shards,
        c.stats.total_signals(),
        rejected,
        c.published.version,
        c.published.manifest.display()
    )?;
    // A shard that published its run with some rejected records still succeeded as a shard.
    Ok(if rejected > 0 && !from_shard {
        EXIT_REJECTS
    } else {
        0
    })
}
