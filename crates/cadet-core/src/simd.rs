//! Runs a hot loop compiled for AVX2 + FMA when the CPU has them (detected once at run time): the same Rust
//! code built twice, so a portable binary still gets wide vectors. Results are identical up to the fused
//! multiply-adds.
// unsafe: calling the AVX2 build of a closure after run-time feature detection (one SAFETY-commented block).
#![allow(unsafe_code)]

/// Calls `f` inside a function compiled with AVX2 and FMA enabled when available, so that `#[inline(always)]`
/// code inside `f` is vectorised with them.
#[inline]
pub fn dispatch<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static AVX2: OnceLock<bool> = OnceLock::new();
        if *AVX2.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
        {
            // SAFETY: the CPU reports AVX2 and FMA, the features `with_avx2` is compiled for.
            return unsafe { with_avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
