//! Timestamp parsing for heterogeneous feeds: one function that accepts every format our sources send.
//!
//! Naive times (no offset) are read in the source's IANA time zone (UTC unless the source sets
//! `timezone`); epoch numbers are read by magnitude, the same way whether they arrive as text or as
//! numbers; [`TimeWindow`] then rejects instants no feed can have produced.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

/// Parses a timestamp into microseconds since the Unix epoch (UTC), reading naive times as UTC.
///
/// Accepted: RFC 3339 (`2026-11-03T14:22:00-03:00`, `...Z`), RFC 2822 (`Tue, 3 Nov 2026 14:22:00
/// -0300`), naive `YYYY-MM-DD HH:MM:SS[.f]` or `YYYY-MM-DDTHH:MM:SS[.f]`, `YYYY/MM/DD ...`, a bare
/// date `YYYY-MM-DD` (midnight), and epoch numbers read by magnitude: seconds (< 1e11),
/// milliseconds (< 1e14), microseconds (< 1e17) or nanoseconds.
///
/// ```
/// use pulso::timefmt::parse_timestamp;
/// assert_eq!(parse_timestamp("1970-01-01T00:00:01Z"), Some(1_000_000));
/// assert_eq!(parse_timestamp("1970-01-01 00:00:02"), Some(2_000_000));
/// assert_eq!(parse_timestamp("3"), Some(3_000_000));
/// assert_eq!(parse_timestamp("yesterday"), None);
/// ```
pub fn parse_timestamp(s: &str) -> Option<i64> {
    parse_timestamp_in(s, None)
}

/// [`parse_timestamp`], reading naive times in `tz` (None = UTC).
pub fn parse_timestamp_in(s: &str, tz: Option<Tz>) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    // Cheapest first: epoch integers, RFC 3339, then the naive spellings most feeds use.
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok().and_then(epoch_to_micros);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros());
    }
    if let Some(n) = naive(s) {
        return local_to_micros(n, tz);
    }
    // RFC 3339 with a space instead of 'T', or an offset without a colon.
    for f in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f %z",
        "%Y-%m-%d %H:%M%:z",
        "%Y-%m-%dT%H:%M%:z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(s, f) {
            return Some(dt.timestamp_micros());
        }
    }
    if s.ends_with(['Z', 'z']) {
        // `2026-11-03 14:22:00Z`, `2026-11-03T14:22Z`
        if let Some(n) = naive(&s[..s.len() - 1]) {
            return Some(n.and_utc().timestamp_micros());
        }
    }
    if s.ends_with(" UTC") || s.ends_with(" GMT") {
        if let Some(n) = naive(&s[..s.len() - 4]) {
            return Some(n.and_utc().timestamp_micros());
        }
    }
    if s.contains(',') || s.contains(' ') {
        if let Ok(dt) = DateTime::parse_from_rfc2822(s) {
            return Some(dt.timestamp_micros());
        }
    }
    if s.bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        if let Ok(f) = s.parse::<f64>() {
            return epoch_f64_to_micros(f);
        }
    }
    None
}

/// A naive date-time or date in one of the unambiguous year-first spellings.
fn naive(s: &str) -> Option<NaiveDateTime> {
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
        "%Y/%m/%d %H:%M:%S%.f",
        "%Y/%m/%d %H:%M",
        "%Y%m%dT%H%M%S",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, f) {
            return Some(dt);
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return d.and_hms_opt(0, 0, 0);
        }
    }
    None
}

/// A wall-clock time in `tz` as UTC microseconds. In a DST gap the time does not exist (None); in a
/// DST overlap the earlier instant is taken.
pub fn local_to_micros(n: NaiveDateTime, tz: Option<Tz>) -> Option<i64> {
    match tz {
        None => Some(n.and_utc().timestamp_micros()),
        Some(tz) => match tz.from_local_datetime(&n) {
            LocalResult::Single(t) => Some(t.timestamp_micros()),
            LocalResult::Ambiguous(a, _) => Some(a.timestamp_micros()),
            LocalResult::None => None,
        },
    }
}

/// Interprets an epoch number by magnitude: seconds (< 1e11), milliseconds (< 1e14),
/// microseconds (< 1e17) or nanoseconds.
pub fn epoch_to_micros(n: i64) -> Option<i64> {
    let a = n.unsigned_abs();
    if a < 100_000_000_000 {
        n.checked_mul(1_000_000)
    } else if a < 100_000_000_000_000 {
        n.checked_mul(1_000)
    } else if a < 100_000_000_000_000_000 {
        Some(n)
    } else {
        Some(n / 1_000)
    }
}

/// [`epoch_to_micros`] for a float epoch (`1762000000.5`, `1762000000123.0`); None when not finite.
pub fn epoch_f64_to_micros(f: f64) -> Option<i64> {
    if !f.is_finite() {
        return None;
    }
    let a = f.abs();
    let us = if a < 1e11 {
        f * 1e6
    } else if a < 1e14 {
        f * 1e3
    } else if a < 1e17 {
        f
    } else {
        f / 1e3
    };
    // Beyond ±2^62 µs nothing is a real time; the window check would reject it anyway.
    (us.abs() < 4.6e18).then(|| us.round() as i64)
}

/// UTC calendar date of a microsecond timestamp.
pub fn micros_to_date(us: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp_micros(us).map(|d| d.date_naive())
}

/// The instants a record may carry: from `earliest` (default 1990-01-01) to the run date plus
/// `future_days` (default 1). Anything outside is `bad_timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// Inclusive, µs since the epoch.
    pub min_us: i64,
    /// Exclusive, µs since the epoch.
    pub max_us: i64,
}

impl TimeWindow {
    /// `earliest` 00:00 UTC to the end of `latest` (UTC).
    pub fn new(earliest: NaiveDate, latest: NaiveDate) -> TimeWindow {
        let at = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_micros();
        TimeWindow {
            min_us: at(earliest),
            max_us: at(latest.succ_opt().unwrap_or(latest)),
        }
    }

    pub fn contains(&self, us: i64) -> bool {
        (self.min_us..self.max_us).contains(&us)
    }

    /// For messages: "is outside 1990-01-01 .. 2026-11-16".
    pub fn describe(&self) -> String {
        let d = |us: i64| {
            micros_to_date(us)
                .map(|d| d.to_string())
                .unwrap_or_default()
        };
        format!(
            "is outside the accepted window {} .. {} (UTC); set [limits] earliest_timestamp / future_days if this is intended",
            d(self.min_us),
            d(self.max_us - 1)
        )
    }
}

impl Default for TimeWindow {
    /// 1990-01-01 to 9999-12-31: used where no run date is known.
    fn default() -> Self {
        TimeWindow::new(
            NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(9999, 12, 30).unwrap(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_normalised_to_utc() {
        let a = parse_timestamp("2026-11-03T14:22:00-03:00").unwrap();
        let b = parse_timestamp("2026-11-03T17:22:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_timestamp("Tue, 3 Nov 2026 14:22:00 -0300"), Some(b));
        assert_eq!(parse_timestamp("2026-11-03 17:22:00 UTC"), Some(b));
    }

    #[test]
    fn epoch_magnitudes() {
        let want = Some(1_762_000_000_000_000);
        for s in [
            "1762000000",
            "1762000000000",
            "1762000000000000",
            "1762000000000000000",
            "1762000000.0",
            "1762000000000.0",
        ] {
            assert_eq!(parse_timestamp(s), want, "{s}");
        }
        assert_eq!(
            epoch_f64_to_micros(1_762_000_000_123.0),
            Some(1_762_000_000_123_000)
        );
        assert_eq!(epoch_f64_to_micros(f64::NAN), None);
        assert_eq!(epoch_f64_to_micros(1e300), None);
    }

    #[test]
    fn rejects_nonsense() {
        for s in [
            "2026-13-45",
            "yesterday",
            "",
            "12/31/2026 10:00",
            "NaN",
            "inf",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
    }

    #[test]
    fn naive_times_in_a_zone() {
        let tz: Tz = "America/Sao_Paulo".parse().unwrap();
        assert_eq!(
            parse_timestamp_in("2026-11-03 14:22:00", Some(tz)),
            parse_timestamp("2026-11-03T17:22:00Z")
        );
        // An explicit offset wins over the zone.
        assert_eq!(
            parse_timestamp_in("2026-11-03T14:22:00Z", Some(tz)),
            parse_timestamp("2026-11-03T14:22:00Z")
        );
    }

    #[test]
    fn window() {
        let w = TimeWindow::new(
            NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 16).unwrap(),
        );
        assert!(w.contains(parse_timestamp("2026-11-16 23:59:59").unwrap()));
        assert!(!w.contains(parse_timestamp("2026-11-17").unwrap()));
        assert!(!w.contains(parse_timestamp("1989-12-31").unwrap()));
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
