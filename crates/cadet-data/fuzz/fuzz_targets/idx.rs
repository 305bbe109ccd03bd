#![no_main]
//! Any bytes: IDX images or labels, or a typed error, never a panic (nor a huge allocation from a lying header).
use cadet_data::formats::{parse_idx_images, parse_idx_labels};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_idx_images(data);
    let _ = parse_idx_labels(data);
});
