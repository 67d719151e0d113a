//! PLACEHOLDER (owned by the insights engineer): `pulso report` terminal tables and HTML.
use chrono::NaiveDate;
use std::path::Path;

pub fn run(out: &Path, date: Option<NaiveDate>, html: Option<&Path>) -> anyhow::Result<()> {
    let _ = (out, date, html);
    anyhow::bail!("report not implemented yet")
}
