//! `pulso eval`: how well a model agrees with a labelled file.
//!
//! Input: CSV, TSV (by `.tsv` extension or a tab in the first line; TSV is read without quoting,
//! GLUE style) or JSON Lines (`.jsonl` / `.ndjson`, or a first line starting with `{`). Columns are
//! named by `text_column` / `label_column` (a header name, case-insensitive, or a 0-based index);
//! a two-column file without a header (`text<TAB>label`, e.g. the UCI sentences) is recognised.
//!
//! Labels: `negative|neutral|positive` (any case; also neg/neu/pos), `0|1|2` (0 = negative),
//! or `-1|0|1`. Numeric files whose labels are only 0 and 1 are binary negative/positive (SST-2,
//! UCI convention). When the file has no neutral class, predictions are negative vs positive
//! (argmax over `p_negative` vs `p_positive`), so a 3-class model is not penalised for neutral.
//!
//! Reported: n, accuracy, macro-F1 (over the file's classes), per-class precision / recall / F1 /
//! support, and the confusion matrix (rows = gold, columns = predicted).

use crate::record::Sentiment;
use crate::score::{DeviceChoice, PrecisionChoice, Scorer, ScorerConfig};
use anyhow::{anyhow, bail, Context};
use serde::Serialize;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `pulso eval` (parsed by clap in main.rs; build them by hand in code and tests).
#[derive(Clone, Debug, clap::Args)]
pub struct EvalArgs {
    /// Model folder or hub id (default: $PULSO_MODEL, else the shipped pulso-multi).
    #[arg(long)]
    pub model: Option<String>,
    /// Labelled file: CSV, TSV or JSON Lines.
    #[arg(long)]
    pub input: PathBuf,
    /// Column with the text: header name or 0-based index.
    #[arg(long, default_value = "text")]
    pub text_column: String,
    /// Column with the gold label: header name or 0-based index.
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// CPU threads for the scorer (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Score at most this many rows (the first ones).
    #[arg(long)]
    pub limit: Option<usize>,
    /// auto, fp32 or bf16.
    #[arg(long, default_value = "auto")]
    pub precision: PrecisionChoice,
    /// auto (a GPU when libtorch sees one), cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Also report the metrics per value of this column (e.g. `lang` or `domain`).
    #[arg(long, value_name = "COLUMN")]
    pub by: Option<String>,
    /// Accepted for scripts that pass it to every subcommand (eval draws no bars).
    #[arg(long)]
    pub no_progress: bool,
}

impl EvalArgs {
    /// The scorer config these arguments ask for (model or the default model, threads, precision).
    pub fn scorer_config(&self) -> anyhow::Result<ScorerConfig> {
        let mut c = ScorerConfig::for_cli(self.model.clone(), self.threads, "auto")?;
        c.precision = self.precision;
        c.device = self.device;
        Ok(c)
    }
}

impl Default for EvalArgs {
    fn default() -> Self {
        EvalArgs {
            model: None,
            input: PathBuf::new(),
            text_column: "text".into(),
            label_column: "label".into(),
            json: false,
            threads: None,
            limit: None,
            precision: PrecisionChoice::Auto,
            device: DeviceChoice::Auto,
            by: None,
            no_progress: false,
        }
    }
}

/// One class's numbers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassMetrics {
    pub label: Sentiment,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Gold examples of this class.
    pub support: usize,
}

/// The confusion matrix: `matrix[gold][predicted]`, in `labels` order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Confusion {
    pub labels: Vec<Sentiment>,
    pub matrix: Vec<Vec<usize>>,
}

/// What `pulso eval` reports.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    pub file: String,
    pub model: String,
    /// What the scorer runs in (`fp32`, `bf16`, `int8`): `auto` resolved on this machine.
    pub precision: String,
    pub n: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    /// The file has no neutral class: scored negative vs positive.
    pub binary: bool,
    pub per_class: Vec<ClassMetrics>,
    pub confusion: Confusion,
    pub seconds: f64,
    pub texts_per_second: f64,
    /// The `--by` column, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Metrics per value of the `--by` column, in value order (empty without `--by`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupMetrics>,
}

/// The metrics of the rows that share one value of the `--by` column.
#[derive(Clone, Debug, Serialize)]
pub struct GroupMetrics {
    pub value: String,
    pub n: usize,
    pub accuracy: f64,
    /// Over the file's classes (so groups of one file are comparable).
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
}

/// Metrics of predictions against gold labels over `classes` (the gold classes of the file).
pub fn metrics(
    gold: &[Sentiment],
    pred: &[Sentiment],
    classes: &[Sentiment],
) -> (f64, f64, Vec<ClassMetrics>, Confusion) {
    assert_eq!(gold.len(), pred.len());
    let k = classes.len();
    let pos = |s: Sentiment| classes.iter().position(|&c| c == s);
    // Predictions outside `classes` (e.g. neutral on a binary file) count as wrong for every class.
    let mut matrix = vec![vec![0usize; k]; k];
    let mut correct = 0usize;
    for (&g, &p) in gold.iter().zip(pred) {
        if g == p {
            correct += 1;
        }
        if let (Some(gi), Some(pi)) = (pos(g), pos(p)) {
            matrix[gi][pi] += 1;
        }
    }
    let n = gold.len();
    let mut per_class = Vec::with_capacity(k);
    for (ci, &c) in classes.iter().enumerate() {
        let tp = matrix[ci][ci];
        let support = gold.iter().filter(|&&g| g == c).count();
        let predicted = pred.iter().filter(|&&p| p == c).count();
        let precision = if predicted == 0 {
            0.0
        } else {
            tp as f64 / predicted as f64
        };
        let recall = if support == 0 {
            0.0
        } else {
            tp as f64 / support as f64
        };
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        per_class.push(ClassMetrics {
            label: c,
            precision,
            recall,
            f1,
            support,
        });
    }
    let accuracy = if n == 0 {
        0.0
    } else {
        correct as f64 / n as f64
    };
    let macro_f1 = if k == 0 {
        0.0
    } else {
        per_class.iter().map(|c| c.f1).sum::<f64>() / k as f64
    };
    (
        accuracy,
        macro_f1,
        per_class,
        Confusion {
            labels: classes.to_vec(),
            matrix,
        },
    )
}

/// A labelled row.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledText {
    pub text: String,
    pub label: Sentiment,
    /// The value of the `--by` column (`(none)` where the row has none).
    pub group: Option<String>,
}

/// Shown for a row whose `--by` column is empty or absent.
pub const NO_GROUP: &str = "(none)";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Csv,
    Tsv,
    JsonLines,
}

fn sniff_format(path: &Path) -> anyhow::Result<Format> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "tsv" | "tab" => return Ok(Format::Tsv),
        "jsonl" | "ndjson" => return Ok(Format::JsonLines),
        "csv" => return Ok(Format::Csv),
        _ => {}
    }
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut first = String::new();
    BufReader::new(f)
        .read_line(&mut first)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(if first.trim_start().starts_with('{') {
        Format::JsonLines
    } else if first.contains('\t') {
        Format::Tsv
    } else {
        Format::Csv
    })
}

/// A raw label as written in the file, before the file-wide numeric scheme is known.
#[derive(Clone, Debug)]
enum RawLabel {
    Named(Sentiment),
    Number(i64),
}

fn parse_raw_label(s: &str) -> Option<RawLabel> {
    let t = s.trim().trim_matches('"').to_ascii_lowercase();
    Some(match t.as_str() {
        "negative" | "neg" => RawLabel::Named(Sentiment::Negative),
        "neutral" | "neu" => RawLabel::Named(Sentiment::Neutral),
        "positive" | "pos" => RawLabel::Named(Sentiment::Positive),
        _ => {
            let v: f64 = t.parse().ok()?;
            if v.fract() != 0.0 || !(-1.0..=2.0).contains(&v) {
                return None;
            }
            RawLabel::Number(v as i64)
        }
    })
}

const LABEL_HELP: &str = "negative|neutral|positive, 0|1|2 (0 = negative) or -1|0|1";

/// Column selector: header name, or 0-based index.
fn column_index(header: &[String], want: &str) -> Option<usize> {
    header
        .iter()
        .position(|h| {
            h.trim()
                .trim_start_matches('\u{feff}')
                .eq_ignore_ascii_case(want.trim())
        })
        .or_else(|| want.trim().parse::<usize>().ok())
}

/// Reads a labelled file (see module docs). Errors name the file, line and field.
pub fn read_labelled(
    path: &Path,
    text_column: &str,
    label_column: &str,
) -> anyhow::Result<Vec<LabelledText>> {
    read_labelled_by(path, text_column, label_column, None)
}

/// [`read_labelled`], also reading each row's value of `group_column`. The column must exist in the
/// file (a header name in CSV/TSV, a key on at least one JSON line); rows without a value get
/// [`NO_GROUP`].
pub fn read_labelled_by(
    path: &Path,
    text_column: &str,
    label_column: &str,
    group_column: Option<&str>,
) -> anyhow::Result<Vec<LabelledText>> {
    let file = path.display().to_string();
    // line, text, raw label, parsed, group
    let mut rows: Vec<(usize, String, String, RawLabel, Option<String>)> = Vec::new();
    let mut group_seen = false;
    let bad_label = |line: usize, v: &str| {
        anyhow!(
            "{file}:{line}: field '{label_column}' is {v:?}, not a sentiment label ({LABEL_HELP})"
        )
    };
    match sniff_format(path)? {
        Format::JsonLines => {
            let f = std::fs::File::open(path).with_context(|| format!("cannot open {file}"))?;
            for (i, line) in BufReader::new(f).lines().enumerate() {
                let ln = i + 1;
                let line = line.with_context(|| format!("{file}:{ln}: cannot read line"))?;
                if line.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(&line)
                    .map_err(|e| anyhow!("{file}:{ln}: not valid JSON: {e}"))?;
                let obj = v
                    .as_object()
                    .ok_or_else(|| anyhow!("{file}:{ln}: not a JSON object"))?;
                let text = match obj.get(text_column) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(_) => bail!("{file}:{ln}: field '{text_column}' is not a string"),
                    None => {
                        bail!("{file}:{ln}: field '{text_column}' is missing (use --text-column)")
                    }
                };
                let raw = match obj.get(label_column) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Number(n)) => n.to_string(),
                    Some(other) => return Err(bad_label(ln, &other.to_string())),
                    None => {
                        bail!("{file}:{ln}: field '{label_column}' is missing (use --label-column)")
                    }
                };
                let parsed = parse_raw_label(&raw).ok_or_else(|| bad_label(ln, &raw))?;
                let group = group_column.map(|g| match obj.get(g) {
                    Some(serde_json::Value::String(s)) if !s.trim().is_empty() => {
                        group_seen = true;
                        s.trim().to_string()
                    }
                    Some(serde_json::Value::Null) | None => NO_GROUP.to_string(),
                    Some(serde_json::Value::String(_)) => {
                        group_seen = true;
                        NO_GROUP.to_string()
                    }
                    Some(other) => {
                        group_seen = true;
                        other.to_string()
                    }
                });
                rows.push((ln, text, raw, parsed, group));
            }
        }
        fmt @ (Format::Csv | Format::Tsv) => {
            let mut b = csv::ReaderBuilder::new();
            b.has_headers(false).flexible(true);
            if fmt == Format::Tsv {
                b.delimiter(b'\t').quoting(false);
            }
            let mut rdr = b
                .from_path(path)
                .with_context(|| format!("cannot open {file}"))?;
            let mut records = rdr.records();
            let first = match records.next() {
                None => bail!("{file} is empty"),
                Some(r) => r.map_err(|e| anyhow!("{file}: {e}"))?,
            };
            let first_fields: Vec<String> = first.iter().map(str::to_string).collect();
            let named_text = first_fields
                .iter()
                .any(|h| h.trim().eq_ignore_ascii_case(text_column.trim()));
            let named_label = first_fields
                .iter()
                .any(|h| h.trim().eq_ignore_ascii_case(label_column.trim()));
            let (ti, li, first_is_data) = if named_text && named_label {
                (
                    column_index(&first_fields, text_column).unwrap(),
                    column_index(&first_fields, label_column).unwrap(),
                    false,
                )
            } else if let (Some(ti), Some(li)) = (
                text_column
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .or(named_text.then(|| column_index(&first_fields, text_column).unwrap())),
                label_column
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .or(named_label.then(|| column_index(&first_fields, label_column).unwrap())),
            ) {
                // Indices given: the first row is data unless its label cell is not a label (a header).
                let is_data = !named_text
                    && !named_label
                    && first_fields
                        .get(li)
                        .map(|v| parse_raw_label(v).is_some())
                        .unwrap_or(false);
                (ti, li, is_data)
            } else if first_fields.len() == 2 && parse_raw_label(&first_fields[1]).is_some() {
                (0, 1, true) // headerless text,label
            } else {
                bail!(
                    "{file}:1: no column '{}' / '{}' in the header {:?}; pass --text-column and --label-column \
                     (a header name or a 0-based index)",
                    text_column,
                    label_column,
                    first_fields
                );
            };
            let gi = match group_column {
                None => None,
                Some(g) if first_is_data => g.trim().parse::<usize>().ok().map(Some).ok_or_else(|| {
                    anyhow!("{file}: --by {g:?}: the file has no header; name the column by its 0-based index")
                })?,
                Some(g) => Some(column_index(&first_fields, g).filter(|&i| i < first_fields.len()).ok_or_else(|| {
                    anyhow!("{file}:1: --by {g:?}: no such column; the header has {first_fields:?}")
                })?),
            };
            group_seen = gi.is_some();
            let mut take = |rec: &csv::StringRecord, ln: usize| -> anyhow::Result<()> {
                let text = rec.get(ti).ok_or_else(|| {
                    anyhow!("{file}:{ln}: field '{text_column}' (column {ti}) is missing: the row has {} fields", rec.len())
                })?;
                let raw = rec.get(li).ok_or_else(|| {
                    anyhow!("{file}:{ln}: field '{label_column}' (column {li}) is missing: the row has {} fields", rec.len())
                })?;
                let parsed = parse_raw_label(raw).ok_or_else(|| bad_label(ln, raw))?;
                let group = gi.map(|i| match rec.get(i).map(str::trim) {
                    Some(v) if !v.is_empty() => v.to_string(),
                    _ => NO_GROUP.to_string(),
                });
                rows.push((ln, text.to_string(), raw.to_string(), parsed, group));
                Ok(())
            };
            if first_is_data {
                take(
                    &first,
                    first.position().map(|p| p.line() as usize).unwrap_or(1),
                )?;
            }
            for rec in records {
                let rec = rec.map_err(|e| anyhow!("{file}: {e}"))?;
                let ln = rec.position().map(|p| p.line() as usize).unwrap_or(0);
                if rec.len() == 1 && rec.get(0).map(|s| s.trim().is_empty()).unwrap_or(true) {
                    continue; // blank line
                }
                take(&rec, ln)?;
            }
        }
    }
    if let (Some(g), false) = (group_column, group_seen) {
        bail!("{file}: --by {g:?}: no row has that field");
    }
    // Decide the numeric scheme for the whole file.
    let nums: Vec<i64> = rows
        .iter()
        .filter_map(|r| {
            if let RawLabel::Number(n) = r.3 {
                Some(n)
            } else {
                None
            }
        })
        .collect();
    let has_minus = nums.contains(&-1);
    let has_two = nums.contains(&2);
    if has_minus && has_two {
        let ln = rows
            .iter()
            .find(|r| matches!(r.3, RawLabel::Number(2)))
            .map(|r| r.0)
            .unwrap_or(0);
        bail!("{file}:{ln}: field '{label_column}' mixes -1 and 2; use one scheme ({LABEL_HELP})");
    }
    let map_num = |n: i64| -> Sentiment {
        match (has_minus, has_two, n) {
            (true, _, -1) => Sentiment::Negative,
            (true, _, 0) => Sentiment::Neutral,
            (true, _, _) => Sentiment::Positive,
            (false, true, 0) => Sentiment::Negative,
            (false, true, 1) => Sentiment::Neutral,
            (false, true, _) => Sentiment::Positive,
            // only 0 and 1: binary
            (false, false, 0) => Sentiment::Negative,
            (false, false, _) => Sentiment::Positive,
        }
    };
    Ok(rows
        .into_iter()
        .map(|(_, text, _, l, group)| LabelledText {
            text,
            label: match l {
                RawLabel::Named(s) => s,
                RawLabel::Number(n) => map_num(n),
            },
            group,
        })
        .collect())
}

/// Scores the file and computes the report (prints nothing).
pub fn evaluate(args: &EvalArgs, scorer: &Scorer) -> anyhow::Result<EvalReport> {
    let mut rows = read_labelled_by(
        &args.input,
        &args.text_column,
        &args.label_column,
        args.by.as_deref(),
    )?;
    if let Some(l) = args.limit {
        rows.truncate(l);
    }
    if rows.is_empty() {
        bail!("{} has no labelled rows", args.input.display());
    }
    let binary = !rows.iter().any(|r| r.label == Sentiment::Neutral);
    let classes: Vec<Sentiment> = if binary {
        vec![Sentiment::Negative, Sentiment::Positive]
    } else {
        Sentiment::ALL.to_vec()
    };
    let t0 = Instant::now();
    let mut pred = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(4096) {
        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
        for s in scorer.score(&texts)? {
            pred.push(if binary {
                if s.p_positive > s.p_negative {
                    Sentiment::Positive
                } else {
                    Sentiment::Negative
                }
            } else {
                s.sentiment
            });
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let gold: Vec<Sentiment> = rows.iter().map(|r| r.label).collect();
    let (accuracy, macro_f1, per_class, confusion) = metrics(&gold, &pred, &classes);
    let groups = group_metrics(&rows, &pred, &classes);
    Ok(EvalReport {
        file: args.input.display().to_string(),
        model: scorer.info().name.clone(),
        precision: scorer.info().precision.clone(),
        n: rows.len(),
        accuracy,
        macro_f1,
        binary,
        per_class,
        confusion,
        seconds,
        texts_per_second: rows.len() as f64 / seconds.max(1e-9),
        by: args.by.clone(),
        groups,
    })
}

/// Metrics per group value (rows without groups give none), over the file's classes.
pub fn group_metrics(
    rows: &[LabelledText],
    pred: &[Sentiment],
    classes: &[Sentiment],
) -> Vec<GroupMetrics> {
    let mut by: std::collections::BTreeMap<&str, (Vec<Sentiment>, Vec<Sentiment>)> =
        Default::default();
    for (r, &p) in rows.iter().zip(pred) {
        if let Some(g) = &r.group {
            let e = by.entry(g.as_str()).or_default();
            e.0.push(r.label);
            e.1.push(p);
        }
    }
    by.into_iter()
        .map(|(value, (gold, pred))| {
            let (accuracy, macro_f1, per_class, _) = metrics(&gold, &pred, classes);
            GroupMetrics {
                value: value.to_string(),
                n: gold.len(),
                accuracy,
                macro_f1,
                per_class,
            }
        })
        .collect()
}

/// Writes the report as a table, or as one JSON object.
pub fn write_report(r: &EvalReport, json: bool, out: &mut dyn Write) -> std::io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, r)?;
        return writeln!(out);
    }
    writeln!(out, "file      {}", r.file)?;
    writeln!(out, "model     {} ({})", r.model, r.precision)?;
    writeln!(
        out,
        "n         {}{}",
        r.n,
        if r.binary {
            "  (binary: negative vs positive)"
        } else {
            ""
        }
    )?;
    writeln!(out, "accuracy  {:.4}", r.accuracy)?;
    writeln!(out, "macro-F1  {:.4}", r.macro_f1)?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<10} {:>9} {:>9} {:>9} {:>9}",
        "class", "precision", "recall", "f1", "support"
    )?;
    for c in &r.per_class {
        writeln!(
            out,
            "{:<10} {:>9.4} {:>9.4} {:>9.4} {:>9}",
            c.label.as_str(),
            c.precision,
            c.recall,
            c.f1,
            c.support
        )?;
    }
    writeln!(out)?;
    writeln!(out, "confusion (rows = gold, columns = predicted)")?;
    write!(out, "{:<10}", "")?;
    for l in &r.confusion.labels {
        write!(out, " {:>9}", l.as_str())?;
    }
    writeln!(out)?;
    for (l, row) in r.confusion.labels.iter().zip(&r.confusion.matrix) {
        write!(out, "{:<10}", l.as_str())?;
        for v in row {
            write!(out, " {v:>9}")?;
        }
        writeln!(out)?;
    }
    writeln!(out)?;
    if let Some(by) = &r.by {
        writeln!(out, "by {by}")?;
        write!(
            out,
            "{:<16} {:>7} {:>9} {:>9}",
            by, "n", "accuracy", "macro-F1"
        )?;
        for l in &r.confusion.labels {
            write!(out, " {:>9}", format!("f1 {}", &l.as_str()[..3]))?;
        }
        writeln!(out)?;
        for g in &r.groups {
            write!(
                out,
                "{:<16} {:>7} {:>9.4} {:>9.4}",
                g.value, g.n, g.accuracy, g.macro_f1
            )?;
            for c in &g.per_class {
                write!(out, " {:>9.4}", c.f1)?;
            }
            writeln!(out)?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "{:.1} texts/s ({:.1} s)",
        r.texts_per_second, r.seconds
    )
}

/// `pulso eval`: evaluates and prints to stdout (table, or JSON with `args.json`).
pub fn run(args: &EvalArgs, scorer: &Scorer) -> anyhow::Result<EvalReport> {
    let report = evaluate(args, scorer)?;
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    match write_report(&report, args.json, &mut lock) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("writing the report"),
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Sentiment::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn three_class_known_answer() {
        // gold:  N N N U U P P P P P
        // pred:  N N U U N P P P U N
        let gold = [
            Negative, Negative, Negative, Neutral, Neutral, Positive, Positive, Positive, Positive,
            Positive,
        ];
        let pred = [
            Negative, Negative, Neutral, Neutral, Negative, Positive, Positive, Positive, Neutral,
            Negative,
        ];
        let (acc, mf1, pc, conf) = metrics(&gold, &pred, &Sentiment::ALL);
        assert!(close(acc, 0.6));
        assert_eq!(
            conf.matrix,
            vec![vec![2, 1, 0], vec![1, 1, 0], vec![1, 1, 3]]
        );
        // negative: tp 2, predicted 4, support 3 -> p .5, r .6667, f1 .571428...
        assert!(
            close(pc[0].precision, 0.5)
                && close(pc[0].recall, 2.0 / 3.0)
                && close(pc[0].f1, 4.0 / 7.0)
        );
        // neutral: tp 1, predicted 3, support 2 -> p .3333, r .5, f1 .4
        assert!(close(pc[1].f1, 0.4));
        // positive: tp 3, predicted 3, support 5 -> p 1, r .6, f1 .75
        assert!(close(pc[2].precision, 1.0) && close(pc[2].recall, 0.6) && close(pc[2].f1, 0.75));
        assert!(close(mf1, (4.0 / 7.0 + 0.4 + 0.75) / 3.0));
        assert_eq!(pc.iter().map(|c| c.support).sum::<usize>(), 10);
    }

    #[test]
    fn binary_and_degenerate() {
        let gold = [Negative, Positive, Positive, Negative];
        let pred = [Negative, Positive, Negative, Negative];
        let (acc, mf1, pc, conf) = metrics(&gold, &pred, &[Negative, Positive]);
        assert!(close(acc, 0.75));
        assert_eq!(conf.matrix, vec![vec![2, 0], vec![1, 1]]);
        // neg: p 2/3 r 1 f1 .8; pos: p 1 r .5 f1 2/3
        assert!(close(pc[0].f1, 0.8) && close(pc[1].f1, 2.0 / 3.0));
        assert!(close(mf1, (0.8 + 2.0 / 3.0) / 2.0));
        // A class never predicted has precision 0 and f1 0, not NaN.
        let (_, _, pc, _) = metrics(
            &[Negative, Positive],
            &[Negative, Negative],
            &[Negative, Positive],
        );
        assert_eq!(pc[1].precision, 0.0);
        assert_eq!(pc[1].f1, 0.0);
    }

    fn write_tmp(name: &str, body: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pulso-eval-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn reads_formats_and_schemes() {
        let p = write_tmp(
            "a.csv",
            "id,text,label\n1,\"good, really\",positive\n2,meh,Neutral\n3,bad,NEGATIVE\n",
        );
        let r = read_labelled(&p, "text", "label").unwrap();
        assert_eq!(
            r.iter().map(|x| x.label).collect::<Vec<_>>(),
            vec![Positive, Neutral, Negative]
        );
        assert_eq!(r[0].text, "good, really");

        let p = write_tmp("b.tsv", "sentence\tlabel\n\"quoted\" text\t1\nbad\t0\n");
        let r = read_labelled(&p, "sentence", "label").unwrap();
        assert_eq!(r[0].text, "\"quoted\" text");
        assert_eq!(
            r.iter().map(|x| x.label).collect::<Vec<_>>(),
            vec![Positive, Negative]
        );

        let p = write_tmp(
            "uci.txt",
            "Wow... Loved this place.\t1\nCrust is not good.\t0\n",
        );
        let r = read_labelled(&p, "text", "label").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].label, Positive);

        let p = write_tmp("c.jsonl", "{\"text\":\"a\",\"label\":2}\n{\"text\":\"b\",\"label\":0}\n\n{\"text\":\"c\",\"label\":\"1\"}\n");
        let r = read_labelled(&p, "text", "label").unwrap();
        assert_eq!(
            r.iter().map(|x| x.label).collect::<Vec<_>>(),
            vec![Positive, Negative, Neutral]
        );

        let p = write_tmp("d.csv", "text,label\na,-1\nb,0\nc,1\n");
        let r = read_labelled(&p, "text", "label").unwrap();
        assert_eq!(
            r.iter().map(|x| x.label).collect::<Vec<_>>(),
            vec![Negative, Neutral, Positive]
        );

        let p = write_tmp(
            "semeval.tsv",
            "11\tneutral\tsome tweet\n12\tpositive\tyay\n",
        );
        let r = read_labelled(&p, "2", "1").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].text, "yay");
    }

    #[test]
    fn bad_rows_name_file_line_field() {
        let p = write_tmp("bad.csv", "text,label\nok,positive\nhmm,maybe\n");
        let e = read_labelled(&p, "text", "label").unwrap_err().to_string();
        assert!(
            e.contains("bad.csv:3") && e.contains("'label'") && e.contains("maybe"),
            "{e}"
        );
        let p = write_tmp("short.csv", "text,label\nok,positive\nonly-text\n");
        let e = read_labelled(&p, "text", "label").unwrap_err().to_string();
        assert!(e.contains("short.csv:3") && e.contains("'label'"), "{e}");
        let p = write_tmp("nocol.csv", "body,label\nok,positive\n");
        let e = read_labelled(&p, "text", "label").unwrap_err().to_string();
        assert!(
            e.contains("nocol.csv:1") && e.contains("--text-column"),
            "{e}"
        );
        let p = write_tmp(
            "bad.jsonl",
            "{\"text\":\"a\",\"label\":\"positive\"}\n{\"label\":\"negative\"}\n",
        );
        let e = read_labelled(&p, "text", "label").unwrap_err().to_string();
        assert!(e.contains("bad.jsonl:2") && e.contains("'text'"), "{e}");
    }

    #[test]
    fn by_column_groups_rows_and_computes_metrics_per_group() {
        let p = write_tmp(
            "by.jsonl",
            concat!(
                "{\"text\":\"a\",\"label\":\"positive\",\"lang\":\"pt\"}\n",
                "{\"text\":\"b\",\"label\":\"negative\",\"lang\":\"pt\"}\n",
                "{\"text\":\"c\",\"label\":\"neutral\",\"lang\":\"es\"}\n",
                "{\"text\":\"d\",\"label\":\"positive\"}\n",
            ),
        );
        let rows = read_labelled_by(&p, "text", "label", Some("lang")).unwrap();
        let groups: Vec<_> = rows.iter().map(|r| r.group.clone().unwrap()).collect();
        assert_eq!(groups, ["pt", "pt", "es", NO_GROUP]);
        // predictions: pt rows right and wrong, es right, (none) wrong
        let pred = [Positive, Positive, Neutral, Negative];
        let g = group_metrics(&rows, &pred, &Sentiment::ALL);
        let names: Vec<_> = g.iter().map(|g| g.value.as_str()).collect();
        assert_eq!(names, [NO_GROUP, "es", "pt"]);
        let pt = &g[2];
        assert_eq!(pt.n, 2);
        assert!(close(pt.accuracy, 0.5));
        // pt: positive P=1/2 R=1 F1=2/3; negative F1=0; neutral absent from gold and pred: F1=0
        assert!(close(pt.macro_f1, (2.0 / 3.0) / 3.0), "{}", pt.macro_f1);
        assert!(close(g[1].accuracy, 1.0) && close(g[0].accuracy, 0.0));

        let p = write_tmp(
            "by.csv",
            "text,label,domain\nx,positive,tweet\ny,negative,\n",
        );
        let rows = read_labelled_by(&p, "text", "label", Some("domain")).unwrap();
        assert_eq!(rows[0].group.as_deref(), Some("tweet"));
        assert_eq!(rows[1].group.as_deref(), Some(NO_GROUP));
        let e = read_labelled_by(&p, "text", "label", Some("lang"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("by.csv:1") && e.contains("lang") && e.contains("domain"),
            "{e}"
        );
        let p = write_tmp("by_none.jsonl", "{\"text\":\"a\",\"label\":\"positive\"}\n");
        let e = read_labelled_by(&p, "text", "label", Some("lang"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no row has that field"), "{e}");
    }
}
