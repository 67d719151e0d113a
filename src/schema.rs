//! The Parquet contract: column names, types and the conversion from records to Arrow batches.
//!
//! This is the one place that defines what downstream readers (Spark, DuckDB, Polars, pandas) see.
//! Changing a column here is a breaking change for every consumer.

use crate::record::{Reject, Signal};
use arrow::array::{
    ArrayRef, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder,
    ListBuilder, StringBuilder, StructBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use std::sync::{Arc, OnceLock};

/// Schema of `signals/segment=*/date=*/part-*.parquet`.
pub fn signal_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let s = |n: &str, null| Field::new(n, DataType::Utf8, null);
        let i = |n: &str| Field::new(n, DataType::Int64, true);
        Arc::new(Schema::new(vec![
            s("record_id", false),
            s("source", false),
            s("segment", false),
            s("client_type", false),
            s("segment_reason", false),
            s("text", false),
            s("language", false),
            Field::new(
                "event_time",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            s("author_id", true),
            s("department", true),
            s("brand", true),
            s("channel", true),
            i("likes"),
            i("shares"),
            i("replies"),
            i("reach"),
            Field::new("rating", DataType::Float64, true),
            Field::new("score", DataType::Float64, true),
            s("sentiment", false),
            Field::new("p_negative", DataType::Float32, false),
            Field::new("p_neutral", DataType::Float32, false),
            Field::new("p_positive", DataType::Float32, false),
            Field::new("sentiment_score", DataType::Float32, false),
            Field::new("truncated", DataType::Boolean, false),
            s("model", false),
            s("run_id", false),
            Field::new(
                "topics",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                false,
            ),
            Field::new("attrition_risk", DataType::Boolean, true),
            i("engagement"),
            Field::new("brand_mentioned", DataType::Boolean, true),
            Field::new("competitor_mentioned", DataType::Boolean, true),
            s("provider", true),
            s("provider_reason", true),
            Field::new("aspects", DataType::List(Arc::new(aspect_item())), true),
        ]))
    })
    .clone()
}

/// The struct of one `aspects` entry: `topic` or `provider` (one of them set), `sentiment`,
/// `sentiment_score` and `sentence` (0-based index of the sentence in `text`).
pub fn aspect_fields() -> Fields {
    Fields::from(vec![
        Field::new("topic", DataType::Utf8, true),
        Field::new("provider", DataType::Utf8, true),
        Field::new("sentiment", DataType::Utf8, false),
        Field::new("sentiment_score", DataType::Float32, false),
        Field::new("sentence", DataType::Int32, false),
    ])
}

fn aspect_item() -> Field {
    Field::new("item", DataType::Struct(aspect_fields()), true)
}

/// Schema of `rejects/date=*/part-*.parquet`.
pub fn reject_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(vec![
            Field::new("source", DataType::Utf8, false),
            Field::new("location", DataType::Utf8, false),
            Field::new("raw", DataType::Utf8, false),
            Field::new("reason", DataType::Utf8, false),
            Field::new("detail", DataType::Utf8, false),
            Field::new("run_id", DataType::Utf8, false),
        ]))
    })
    .clone()
}

/// Builds one Arrow batch of signals. `model` and `run_id` are constant for a run.
pub fn signals_to_batch<'a>(
    signals: impl IntoIterator<Item = &'a Signal>,
    model: &str,
    run_id: &str,
) -> RecordBatch {
    let signals = signals.into_iter();
    let n = signals.size_hint().0;
    let mut record_id = StringBuilder::new();
    let mut source = StringBuilder::new();
    let mut segment = StringBuilder::new();
    let mut client_type = StringBuilder::new();
    let mut reason = StringBuilder::new();
    let mut text = StringBuilder::new();
    let mut language = StringBuilder::new();
    let mut event_time = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut author_id = StringBuilder::new();
    let mut department = StringBuilder::new();
    let mut brand = StringBuilder::new();
    let mut channel = StringBuilder::new();
    let mut likes = Int64Builder::with_capacity(n);
    let mut shares = Int64Builder::with_capacity(n);
    let mut replies = Int64Builder::with_capacity(n);
    let mut reach = Int64Builder::with_capacity(n);
    let mut rating = Float64Builder::with_capacity(n);
    let mut score = Float64Builder::with_capacity(n);
    let mut sentiment = StringBuilder::new();
    let mut p_neg = Float32Builder::with_capacity(n);
    let mut p_neu = Float32Builder::with_capacity(n);
    let mut p_pos = Float32Builder::with_capacity(n);
    let mut s_score = Float32Builder::with_capacity(n);
    let mut truncated = BooleanBuilder::with_capacity(n);
    let mut model_col = StringBuilder::new();
    let mut run_col = StringBuilder::new();
    let mut topics = ListBuilder::new(StringBuilder::new());
    let mut attrition = BooleanBuilder::with_capacity(n);
    let mut engagement = Int64Builder::with_capacity(n);
    let mut brand_m = BooleanBuilder::with_capacity(n);
    let mut comp_m = BooleanBuilder::with_capacity(n);
    let mut provider = StringBuilder::new();
    let mut provider_reason = StringBuilder::new();
    let mut aspects = ListBuilder::new(StructBuilder::from_fields(aspect_fields(), 0))
        .with_field(Arc::new(aspect_item()));

    for s in signals {
        let r = &s.record;
        record_id.append_value(&r.id);
        source.append_value(&*r.source);
        segment.append_value(s.routing.segment.as_str());
        client_type.append_value(s.routing.client_type.as_str());
        reason.append_value(&s.routing.reason);
        text.append_value(&r.text);
        language.append_value(s.language.as_str());
        event_time.append_option(r.event_time);
        author_id.append_option(s.enrichment.author_id.as_deref());
        department.append_option(r.department.as_deref());
        brand.append_option(r.brand.as_deref());
        channel.append_option(r.channel.as_deref());
        likes.append_option(r.likes);
        shares.append_option(r.shares);
        replies.append_option(r.replies);
        reach.append_option(r.reach);
        rating.append_option(r.rating);
        score.append_option(r.score);
        sentiment.append_value(s.scored.sentiment.as_str());
        p_neg.append_value(s.scored.p_negative);
        p_neu.append_value(s.scored.p_neutral);
        p_pos.append_value(s.scored.p_positive);
        s_score.append_value(s.scored.sentiment_score);
        truncated.append_value(s.scored.truncated);
        model_col.append_value(model);
        run_col.append_value(run_id);
        for t in &s.enrichment.topics {
            topics.values().append_value(t);
        }
        topics.append(true);
        attrition.append_option(s.enrichment.attrition_risk);
        engagement.append_option(s.enrichment.engagement);
        brand_m.append_option(s.enrichment.brand_mentioned);
        comp_m.append_option(s.enrichment.competitor_mentioned);
        provider.append_option(s.enrichment.provider.as_deref());
        provider_reason.append_option(s.enrichment.provider_reason.as_deref());
        match &s.enrichment.aspects {
            None => aspects.append_null(),
            Some(list) => {
                let st = aspects.values();
                for a in list {
                    st.field_builder::<StringBuilder>(0)
                        .expect("topic")
                        .append_option(a.topic.as_deref());
                    st.field_builder::<StringBuilder>(1)
                        .expect("provider")
                        .append_option(a.provider.as_deref());
                    st.field_builder::<StringBuilder>(2)
                        .expect("sentiment")
                        .append_value(a.sentiment.as_str());
                    st.field_builder::<Float32Builder>(3)
                        .expect("sentiment_score")
                        .append_value(a.sentiment_score);
                    st.field_builder::<Int32Builder>(4)
                        .expect("sentence")
                        .append_value(a.sentence as i32);
                    st.append(true);
                }
                aspects.append(true);
            }
        }
    }

    let cols: Vec<ArrayRef> = vec![
        Arc::new(record_id.finish()),
        Arc::new(source.finish()),
        Arc::new(segment.finish()),
        Arc::new(client_type.finish()),
        Arc::new(reason.finish()),
        Arc::new(text.finish()),
        Arc::new(language.finish()),
        Arc::new(event_time.finish()),
        Arc::new(author_id.finish()),
        Arc::new(department.finish()),
        Arc::new(brand.finish()),
        Arc::new(channel.finish()),
        Arc::new(likes.finish()),
        Arc::new(shares.finish()),
        Arc::new(replies.finish()),
        Arc::new(reach.finish()),
        Arc::new(rating.finish()),
        Arc::new(score.finish()),
        Arc::new(sentiment.finish()),
        Arc::new(p_neg.finish()),
        Arc::new(p_neu.finish()),
        Arc::new(p_pos.finish()),
        Arc::new(s_score.finish()),
        Arc::new(truncated.finish()),
        Arc::new(model_col.finish()),
        Arc::new(run_col.finish()),
        Arc::new(topics.finish()),
        Arc::new(attrition.finish()),
        Arc::new(engagement.finish()),
        Arc::new(brand_m.finish()),
        Arc::new(comp_m.finish()),
        Arc::new(provider.finish()),
        Arc::new(provider_reason.finish()),
        Arc::new(aspects.finish()),
    ];
    RecordBatch::try_new(signal_schema(), cols).expect("signal columns match signal_schema()")
}

/// Builds one Arrow batch of rejects.
pub fn rejects_to_batch<'a>(
    rejects: impl IntoIterator<Item = &'a Reject>,
    run_id: &str,
) -> RecordBatch {
    let mut source = StringBuilder::new();
    let mut location = StringBuilder::new();
    let mut raw = StringBuilder::new();
    let mut reason = StringBuilder::new();
    let mut detail = StringBuilder::new();
    let mut run = StringBuilder::new();
    for r in rejects {
        source.append_value(&*r.source);
        location.append_value(&r.location);
        raw.append_value(&r.raw);
        reason.append_value(r.reason.code());
        detail.append_value(r.reason.detail());
        run.append_value(run_id);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(source.finish()),
        Arc::new(location.finish()),
        Arc::new(raw.finish()),
        Arc::new(reason.finish()),
        Arc::new(detail.finish()),
        Arc::new(run.finish()),
    ];
    RecordBatch::try_new(reject_schema(), cols).expect("reject columns match reject_schema()")
}
