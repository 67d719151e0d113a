//! Fuzz the timestamp parser: any text parses or not, never panics; epoch magnitudes agree.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(t) = pulso::timefmt::parse_timestamp(s) {
            // Whatever parses is a real instant.
            assert!(chrono::DateTime::from_timestamp_micros(t).is_some(), "{s:?} -> {t}");
        }
    }
    if data.len() >= 8 {
        let n = i64::from_le_bytes(data[..8].try_into().unwrap());
        let _ = pulso::timefmt::epoch_to_micros(n);
        let _ = pulso::timefmt::epoch_f64_to_micros(f64::from_bits(n as u64));
    }
});
