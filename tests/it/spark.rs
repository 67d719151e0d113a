//! The Spark recipe (deploy/spark/) for real, in Spark local mode: tests/py/spark_local.py drives
//! `pulso_spark.score` (mapInArrow, one `pulso score --arrow` per task) with this build's binary
//! and models/pulso-mini, and compares every row with plain `pulso score`.
//!
//! Needs Java and PySpark (`make test` installs both: pyspark into .venv, openjdk-17-jre-headless
//! with apt). Without them the test says so on the terminal and does nothing else.

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_pulso");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Python that has pyspark (`make test` installs it into .venv); PULSO_TEST_PYTHON overrides.
fn python() -> PathBuf {
    std::env::var_os("PULSO_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"))
}

/// Why the Spark test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    match Command::new("java").arg("-version").output() {
        Ok(o) if o.status.success() => {}
        _ => {
            return Some(
                "Java not found (apt-get install openjdk-17-jre-headless; `make test` does)".into(),
            )
        }
    }
    match Command::new(python())
        .args(["-c", "import pyspark, pyarrow, pandas"])
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "{} cannot import pyspark/pyarrow/pandas (`make test` installs them): {}",
            python().display(),
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Err(e) => Some(format!("cannot run {}: {e}", python().display())),
    }
}

#[test]
fn spark_local_mode_scores_like_pulso_score() {
    if let Some(why) = missing_prerequisite() {
        // Straight to the terminal: the test harness hides what a passing test prints.
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED spark_local_mode_scores_like_pulso_score: {why}\n"
        );
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let o = Command::new(python())
        .arg(root().join("tests/py/spark_local.py"))
        .arg("--pulso")
        .arg(BIN)
        .arg("--model")
        .arg(root().join("models/pulso-mini"))
        .arg("--workdir")
        .arg(work.path())
        .args(["--rows", "2000", "--partitions", "4"])
        .env_remove("PULSO_MODEL")
        .output()
        .expect("run tests/py/spark_local.py");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "spark_local.py failed ({:?})\nstdout:\n{stdout}\nstderr (end):\n{}",
        o.status.code(),
        &stderr[stderr.len().saturating_sub(8000)..]
    );
    let s: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no summary line ({e}):\n{stdout}"));
    // 2,000 texts plus a null, an empty and a blank one.
    assert_eq!(s["rows_in"], 2003, "{s}");
    assert_eq!(s["rows_out"], 2003, "{s}");
    assert_eq!(s["unique_ids"], 2003, "{s}");
    assert_eq!(s["partitions"], 4, "{s}");
    assert!(s["max_prob_diff"].as_f64().unwrap() < 1e-4, "{s}");
    for (k, needle) in [
        ("missing_binary_error", "/nonexistent/pulso"),
        ("missing_model_error", "no-model"),
        ("conf_model_error", "spark.pulso.model"),
        ("pulso_failure_error", "pulso failed"),
    ] {
        assert!(s[k].as_str().unwrap_or("").contains(needle), "{k}: {s}");
    }
    assert_eq!(
        s["nightly"]["by_outcome"],
        serde_json::json!({"scored": 60, "null_text": 1, "empty_text": 2}),
        "{s}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "spark local[2]: {} records/s through Spark ({} s), {} records/s plain pulso score ({} s); session start {} s, whole script {} s",
        s["spark_records_per_s"],
        s["spark_secs"],
        s["plain_records_per_s"],
        s["plain_secs"],
        s["session_start_secs"],
        s["total_secs"]
    );
}
