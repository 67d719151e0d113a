//! pulso: nightly sentiment of internal and external client signals, written as partitioned Parquet.
//!
//! Stages, one module each (see README "Where things are"):
//! [`config`] (pipeline file → validated [`config::Plan`]), [`ingest`] (CSV, JSON Lines, Parquet readers),
//! [`route`] (internal vs external rules), [`lang`] (language detection), [`score`] (batching and
//! replicas over [`model`]), [`enrich`] (topics, risk, engagement, pseudonyms), [`sink`] (atomic
//! partitioned Parquet) and [`publish`] (the one commit point, guard rails, lineage), [`storage`] (object-store URLs), [`aggregate`] and [`report`] (what marketing and HR read), [`pipeline`]
//! (the run that ties them together), [`eval`] (model quality).

pub mod aggregate;
pub mod batch;
pub mod config;
pub mod cputime;
pub mod enrich;
pub mod eval;
pub mod ingest;
pub mod lang;
pub mod model;
pub mod pipeline;
pub mod privacy;
pub mod progress;
pub mod publish;
pub mod record;
pub mod redact;
pub mod report;
pub mod route;
pub mod schema;
pub mod score;
pub mod score_arrow;
pub mod services;
pub mod shard;
pub mod sink;
pub mod storage;
pub mod summary;
pub mod timefmt;
pub mod wordhash;
