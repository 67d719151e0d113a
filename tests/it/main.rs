//! pulso's integration tests, one module per area, in one test binary: one link instead of
//! one per file, and one harness that keeps both cores busy while a long test runs.
//! Each module runs the real `pulso` binary (CARGO_BIN_EXE_pulso) in temp dirs, or loads the
//! shipped models in process; `cargo test --test it MODULE::` runs one area.

mod common;

mod cli;
mod commit;
mod cuda;
mod delta;
mod demo_services;
mod eval_cli;
mod forward;
mod hostile;
mod hub;
mod insights;
mod int8;
mod model_fixtures;
mod precision_auto;
mod props;
mod report_html;
mod s3;
mod score_arrow;
mod services;
mod shards;
mod shipped_model;
mod spark;
