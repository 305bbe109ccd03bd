#![no_main]
//! Any bytes: a convnetjs PNG sheet or labels file, or a typed error, never a panic.
use cadet_data::formats::{convnetjs_labels, parse_sheet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_sheet(data);
    let _ = convnetjs_labels(&String::from_utf8_lossy(data));
});
