//! Timestamp parsing for heterogeneous feeds: one function that accepts every format our sources send.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Parses a timestamp into microseconds since the Unix epoch (UTC).
///
/// Accepted: RFC 3339 (`2026-11-03T14:22:00-03:00`, `...Z`), naive `YYYY-MM-DD HH:MM:SS[.f]` or
/// `YYYY-MM-DDTHH:MM:SS[.f]` (taken as UTC), a bare date `YYYY-MM-DD` (midnight UTC), and epoch
/// numbers: seconds (< 1e11), milliseconds (< 1e14) or microseconds.
///
/// ```
/// use pulso::timefmt::parse_timestamp;
/// assert_eq!(parse_timestamp("1970-01-01T00:00:01Z"), Some(1_000_000));
/// assert_eq!(parse_timestamp("1970-01-01 00:00:02"), Some(2_000_000));
/// assert_eq!(parse_timestamp("3"), Some(3_000_000));
/// assert_eq!(parse_timestamp("yesterday"), None);
/// ```
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros());
    }
    // RFC 3339 with a space instead of 'T' and an offset.
    for f in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(s, f) {
            return Some(dt.timestamp_micros());
        }
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, f) {
            return Some(dt.and_utc().timestamp_micros());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros());
    }
    if let Ok(n) = s.parse::<i64>() {
        return epoch_to_micros(n);
    }
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() && f.fract() != 0.0 && f.abs() < 1e11 {
            return Some((f * 1e6).round() as i64);
        }
    }
    None
}

/// Interprets an epoch number by magnitude: seconds, milliseconds or microseconds.
pub fn epoch_to_micros(n: i64) -> Option<i64> {
    let a = n.unsigned_abs();
    if a < 100_000_000_000 {
        n.checked_mul(1_000_000)
    } else if a < 100_000_000_000_000 {
        n.checked_mul(1_000)
    } else {
        Some(n)
    }
}

/// UTC calendar date of a microsecond timestamp.
pub fn micros_to_date(us: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp_micros(us).map(|d| d.date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_normalised_to_utc() {
        let a = parse_timestamp("2026-11-03T14:22:00-03:00").unwrap();
        let b = parse_timestamp("2026-11-03T17:22:00Z").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn epoch_magnitudes() {
        assert_eq!(parse_timestamp("1762000000"), Some(1_762_000_000_000_000));
        assert_eq!(
            parse_timestamp("1762000000000"),
            Some(1_762_000_000_000_000)
        );
        assert_eq!(
            parse_timestamp("1762000000000000"),
            Some(1_762_000_000_000_000)
        );
    }

    #[test]
    fn rejects_nonsense() {
        for s in ["2026-13-45", "yesterday", "", "12/31/2026 10:00"] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
    }

    #[test]
    fn date_only_and_naive() {
        assert_eq!(
            micros_to_date(parse_timestamp("2026-11-05").unwrap()),
            NaiveDate::from_ymd_opt(2026, 11, 5)
        );
        assert_eq!(
            micros_to_date(parse_timestamp("2026-11-05 23:59:59").unwrap()),
            NaiveDate::from_ymd_opt(2026, 11, 5)
        );
    }
}
