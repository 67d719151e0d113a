//! `pulso report OUT [--date D] [--html FILE]`: what marketing, HR and internal-service owners read.
//!
//! Split by reason to change: [`data`] (which published tables are read and how), [`services`]
//! (the internal-services views), [`terminal`] (the text tables), [`html`] (the view model handed
//! to the templates in `src/report/templates/`). `D` defaults to the latest `date=` partition.
//!
//! The HTML file is self-contained: inline CSS and inline SVG, no JavaScript, no external
//! resources, and a Content-Security-Policy that forbids scripts. It is rendered with minijinja
//! templates whose every `{{ value }}` is escaped by [`escape_html`] (auto-escaping with pulso's
//! escaper); input text is also stripped of control characters on the terminal.
//! Internal signals are never read: HR and service owners see only the (suppressed-where-small)
//! weekly aggregates.

pub mod data;
pub mod html;
pub mod services;
pub mod terminal;

use anyhow::Context;
use chrono::NaiveDate;
use std::path::Path;

pub use data::{BrandRow, HeatRow, Mention, ReportData, WeeklyRow};
pub use html::{escape_html, render_html, CSP};
pub use terminal::render_terminal;

/// Days of brand history shown in the trend chart.
pub const TREND_DAYS: i64 = 30;
/// Days shown in the terminal brand × day table.
pub const TERMINAL_DAYS: i64 = 7;
/// Negative mentions listed.
pub const TOP_NEGATIVE: usize = 10;
/// Weeks of the weekly tables (engagement, internal services) shown.
pub const TREND_WEEKS: i64 = 8;

pub fn run(out: &Path, date: Option<NaiveDate>, html: Option<&Path>) -> anyhow::Result<()> {
    if let Some(url) = out.to_str().filter(|_| crate::storage::is_url_path(out)) {
        return run_remote(url, date, html);
    }
    print_report(&ReportData::load(out, date)?, html)
}

/// `pulso report s3://…`: the current version's aggregates and the date's external signals (all
/// the report reads) are downloaded to a scratch folder, then reported on like a local output.
fn run_remote(url: &str, date: Option<NaiveDate>, html: Option<&Path>) -> anyhow::Result<()> {
    use crate::publish::remote;
    if crate::publish::delta_store::is_delta_store(url) {
        return run_remote_delta(url, date, html);
    }
    let v = remote::committed(url)?.with_context(|| {
        format!("{url} has no committed version (no _pulso/log/ entry); run the pipeline first")
    })?;
    let date = match date {
        Some(d) => d,
        None => remote::tree_files(url, &v)?
            .iter()
            .filter(|rel| rel.starts_with("aggregates/") || rel.starts_with("signals/"))
            .filter_map(|rel| {
                rel.split('/')
                    .find_map(|p| p.strip_prefix("date="))
                    .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            })
            .max()
            .with_context(|| {
                format!(
                    "no date=YYYY-MM-DD partitions in {}; run the pipeline first",
                    v.tree_url
                )
            })?,
    };
    let dir = crate::storage::scratch_dir("report")?;
    let part = format!("/date={}/", date.format("%Y-%m-%d"));
    let r = remote::download(
        url,
        &v,
        &|rel| {
            rel.starts_with("aggregates/")
                || (rel.starts_with("signals/segment=external/") && rel.contains(&part))
        },
        &dir,
    )
    .map_err(anyhow::Error::from)
    .and_then(|_| print_report(&ReportData::load(&dir, Some(date))?, html));
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// `pulso report s3://…` on Delta tables: the live files of the last run's versions of the
/// aggregates and the external signals are downloaded, then reported on like a local output.
fn run_remote_delta(url: &str, date: Option<NaiveDate>, html: Option<&Path>) -> anyhow::Result<()> {
    let dir = crate::storage::scratch_dir("report")?;
    let tables = |t: &str| t.starts_with("aggregates/") || t == "signals";
    let want =
        |rel: &str| rel.starts_with("aggregates/") || rel.starts_with("signals/segment=external/");
    let r = crate::publish::delta_store::download_committed(url, &tables, &want, &dir)
        .map_err(anyhow::Error::from)
        .and_then(|m| {
            m.with_context(|| {
                format!("{url} has no committed run (no _pulso/log/ entry); run the pipeline first")
            })?;
            print_report(&ReportData::load(&dir, date)?, html)
        });
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// The terminal report on stdout and, with `html`, the HTML report written atomically.
fn print_report(data: &ReportData, html: Option<&Path>) -> anyhow::Result<()> {
    print!("{}", render_terminal(data));
    if let Some(path) = html {
        write_atomically(path, render_html(data)?.as_bytes())?;
        eprintln!("report: wrote {}", path.display());
    }
    Ok(())
}
