#![no_main]
//! Any bytes: a CIFAR batch or a typed error, never a panic.
use cadet_data::formats::{CifarKind, parse_cifar};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for kind in [CifarKind::Cifar10, CifarKind::Cifar100Fine, CifarKind::Cifar100Coarse] {
        if let Ok((images, labels)) = parse_cifar(data, kind) {
            assert_eq!(images.dim().0, labels.len());
        }
    }
});
