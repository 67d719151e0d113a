//! Fuzz the csv reader: any bytes give records or rejects (or one whole-file error), never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    // With and without a valid header in front.
    let mut with_header = b"id,text,ts,author,likes,stars,enps\n".to_vec();
    with_header.extend_from_slice(data);
    common::drain(pulso::config::Format::Csv, &with_header);
    common::drain(pulso::config::Format::Csv, data);
});
