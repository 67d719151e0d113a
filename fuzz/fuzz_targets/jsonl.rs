//! Fuzz the jsonl reader: any bytes give records or rejects (or one whole-file error), never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {

    common::drain(pulso::config::Format::Jsonl, data);
});
