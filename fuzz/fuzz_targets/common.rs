// Shared by the reader targets: a source plan mapping every field, and a check that the reader
// yields items (or a whole-file error) without panicking, one per physical record at most.
use pulso::config::{Columns, Format, ReadOptions, SegmentMode, SourcePlan};

pub fn plan(format: Format) -> SourcePlan {
    SourcePlan {
        name: "fuzz".into(),
        format,
        segment: SegmentMode::Auto,
        client_type: None,
        delimiter: b',',
        columns: Columns {
            id: Some("id".into()),
            text: "text".into(),
            timestamp: Some("ts".into()),
            author: Some("author".into()),
            likes: Some("likes".into()),
            rating: Some("stars".into()),
            score: Some("enps".into()),
            ..Default::default()
        },
        files: vec![],
        read: ReadOptions::default(),
    }
}

pub fn drain(format: Format, data: &[u8]) {
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    if let Ok(rows) = pulso::ingest::open_bytes(&plan(format), "fuzz", data.to_vec()) {
        let mut n = 0usize;
        for r in rows {
            if r.is_err() {
                break;
            }
            n += 1;
        }
        if format != Format::Parquet {
            assert!(n <= lines, "{n} items from {lines} lines");
        }
    }
}
