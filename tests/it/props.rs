//! Property tests for the readers and the timestamp / number parsers: any bytes give one signal
//! or reject per physical record, and nothing panics.

use proptest::prelude::*;
use pulso::config::{Columns, Format, ReadOptions, SegmentMode, SourcePlan};
use pulso::ingest::{open_bytes, Item};
use pulso::record::RejectReason;
use pulso::timefmt::{epoch_f64_to_micros, epoch_to_micros, parse_timestamp};

fn plan(format: Format) -> SourcePlan {
    SourcePlan {
        name: "p".into(),
        format,
        segment: SegmentMode::Auto,
        client_type: None,
        delimiter: b',',
        columns: Columns {
            id: Some("id".into()),
            text: "text".into(),
            timestamp: Some("ts".into()),
            likes: Some("likes".into()),
            author: Some("author".into()),
            ..Default::default()
        },
        files: vec![],
        read: ReadOptions::default(),
    }
}

/// Items of an input, or None when the file as a whole is unreadable (allowed, must not panic).
fn items(format: Format, bytes: Vec<u8>) -> Option<Vec<Item>> {
    let rows = open_bytes(&plan(format), "mem", bytes).ok()?;
    let mut v = Vec::new();
    for r in rows {
        v.push(r.ok()?);
    }
    Some(v)
}

fn line_of(i: &Item) -> u64 {
    let loc = match i {
        Item::Record(r) => &r.location,
        Item::Reject(r) => &r.location,
    };
    loc.rsplit(':').next().unwrap().parse().unwrap()
}

/// Non-empty physical lines (a trailing `\r` stripped), 1-based numbers.
fn nonempty_lines(bytes: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    let parts: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last = parts.len();
    for (i, l) in parts.into_iter().enumerate() {
        let terminated = i + 1 < last;
        if !terminated && l.is_empty() {
            break;
        }
        let l = if terminated {
            l.strip_suffix(b"\r").unwrap_or(l)
        } else {
            l
        };
        if !l.is_empty() {
            out.push(i as u64 + 1);
        }
    }
    out
}

const HEADER: &[u8] = b"id,text,ts,likes,author\n";

fn csv_body() -> impl Strategy<Value = Vec<u8>> {
    // Bytes biased towards CSV structure: separators, quotes, newlines, digits, high bytes.
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(b"abc 123-:".to_vec()),
            2 => Just(b','),
            1 => Just(b'"'),
            1 => Just(b'\n'),
            1 => Just(b'\r'),
            1 => any::<u8>(),
        ],
        0..400,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Without quotes, every non-empty physical line after the header is exactly one item, in order.
    #[test]
    fn csv_without_quotes_one_item_per_line(body in csv_body()) {
        let body: Vec<u8> = body.into_iter().filter(|&b| b != b'"').collect();
        let mut bytes = HEADER.to_vec();
        bytes.extend_from_slice(&body);
        let got = items(Format::Csv, bytes.clone()).expect("a CSV with a header is readable");
        let want: Vec<u64> = nonempty_lines(&bytes).into_iter().filter(|&l| l > 1).collect();
        let lines: Vec<u64> = got.iter().map(line_of).collect();
        prop_assert_eq!(lines, want);
    }

    /// With quotes anywhere: no panic, items start on distinct non-empty lines in increasing order,
    /// and a line is only skipped when it belongs to the quoted field of the item before it.
    #[test]
    fn csv_any_bytes_accounted(body in csv_body()) {
        let mut bytes = HEADER.to_vec();
        bytes.extend_from_slice(&body);
        let got = items(Format::Csv, bytes.clone()).expect("a CSV with a header is readable");
        let lines: Vec<u64> = got.iter().map(line_of).collect();
        prop_assert!(lines.windows(2).all(|w| w[0] < w[1]), "{:?}", lines);
        let nonempty = nonempty_lines(&bytes);
        for l in &lines {
            prop_assert!(nonempty.contains(l), "item on empty line {}", l);
        }
        // Every skipped line lies after an item whose raw spans several lines.
        for l in nonempty.iter().filter(|&&l| l > 1 && !lines.contains(&l)) {
            let owner = got.iter().rev().find(|i| line_of(i) < *l);
            let raw_lines = owner.map(|i| match i {
                Item::Record(r) => r.raw.matches('\n').count() as u64 + 1,
                Item::Reject(r) => r.raw.matches('\n').count() as u64 + 1,
            });
            prop_assert!(
                owner.is_some_and(|o| line_of(o) + raw_lines.unwrap() > *l),
                "line {} is not accounted for", l
            );
        }
    }

    /// JSON Lines: one item per non-blank line, whatever the bytes.
    #[test]
    fn jsonl_any_bytes_one_item_per_line(body in prop::collection::vec(
        prop_oneof![3 => prop::sample::select(b"{}[]\":,ab1 ".to_vec()), 1 => Just(b'\n'), 1 => any::<u8>()], 0..400)) {
        let got = items(Format::Jsonl, body.clone()).expect("JSON Lines is always readable");
        let want = body
            .split(|&b| b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .count();
        prop_assert_eq!(got.len(), want);
    }

    /// Parquet: arbitrary bytes are an error or rows, never a panic.
    #[test]
    fn parquet_any_bytes_never_panics(mut body in prop::collection::vec(any::<u8>(), 0..600)) {
        body.splice(0..0, b"PAR1".iter().copied());
        body.extend_from_slice(b"PAR1");
        let _ = items(Format::Parquet, body);
    }

    /// Counts: a JSON number is a record only when it is a whole number from 0 to max_count.
    #[test]
    fn likes_are_plausible_or_rejected(n in prop_oneof![any::<i64>().prop_map(|i| i as f64), any::<f64>(), -10.0..1e13f64]) {
        prop_assume!(n.is_finite());
        let line = format!("{{\"id\":\"1\",\"text\":\"x\",\"ts\":\"2026-11-01\",\"likes\":{}}}\n", serde_json::Number::from_f64(n).unwrap());
        let got = items(Format::Jsonl, line.into_bytes()).unwrap();
        prop_assert_eq!(got.len(), 1);
        let ok = n.fract() == 0.0 && (0.0..=1e12).contains(&n);
        match &got[0] {
            Item::Record(r) => {
                prop_assert!(ok, "{} accepted", n);
                prop_assert_eq!(r.likes, Some(n as i64));
            }
            Item::Reject(r) => {
                prop_assert!(!ok, "{} rejected", n);
                prop_assert_eq!(r.reason.code(), "bad_number:likes");
            }
        }
    }

    /// Timestamps: any string parses or not, without panicking; accepted times are within the window.
    #[test]
    fn timestamps_any_text(s in prop_oneof![
        prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
        prop::collection::vec(prop::sample::select("0123456789-:TZ +./e".chars().collect::<Vec<_>>()), 0..30).prop_map(String::from_iter),
        (0i64..=i64::MAX).prop_map(|n| n.to_string()),
    ]) {
        let _ = parse_timestamp(&s);
        let line = serde_json::json!({"id": "1", "text": "x", "ts": s}).to_string() + "\n";
        let got = items(Format::Jsonl, line.into_bytes()).unwrap();
        prop_assert_eq!(got.len(), 1);
        if let Item::Record(r) = &got[0] {
            let w = ReadOptions::default().window;
            prop_assert!(w.contains(r.event_time.unwrap()));
        } else if let Item::Reject(r) = &got[0] {
            prop_assert!(matches!(r.reason, RejectReason::BadTimestamp(_) | RejectReason::TimestampOutOfRange(..) | RejectReason::MissingField(_)), "{:?}", r.reason);
        }
    }

    /// Epoch units are inferred the same way for text, integers and floats.
    #[test]
    fn epoch_units_agree(secs in 631_152_000i64..4_102_444_800i64, unit in 0u32..4) {
        let n = secs * 1000i64.pow(unit);
        let want = secs * 1_000_000;
        prop_assert_eq!(epoch_to_micros(n), Some(want));
        prop_assert_eq!(parse_timestamp(&n.to_string()), Some(want));
        let f = epoch_f64_to_micros(n as f64).unwrap();
        prop_assert!((f - want).abs() <= 1, "{} vs {}", f, want);
        let rfc = chrono::DateTime::from_timestamp(secs, 0).unwrap().to_rfc3339();
        prop_assert_eq!(parse_timestamp(&rfc), Some(want));
    }
}
