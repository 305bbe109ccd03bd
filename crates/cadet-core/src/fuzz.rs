//! A seeded byte-mutation fuzzer for the crates' file readers, run as ordinary tests (stable Rust, no
//! `cargo fuzz`): each campaign mutates seed files for a time or execution budget and records every input on
//! which the reader panicked or took too long; a test binary that declares [`CappedAllocator`] as its global
//! allocator also turns a runaway allocation into a saved input and a clear abort.
//!
//! Readers must return `Ok` or a typed error for every input: the campaign's target ignores both and only
//! panics, slow executions and huge allocations count as findings.
//!
//! ```
//! use cadet_core::fuzz::{Campaign, Mutator};
//!
//! // A reader with a bug: it indexes by a length byte from the input.
//! fn parse(bytes: &[u8]) -> Option<u8> {
//!     let len = *bytes.first()? as usize;
//!     Some(bytes[len]) // panics when the length byte points past the end
//! }
//! let report = Campaign::new("length byte", vec![vec![2, 7, 9]])
//!     .executions(2_000)
//!     .run(|bytes| {
//!         parse(bytes);
//!     });
//! assert_eq!(report.executions, 2_000);
//! assert!(!report.panics.is_empty(), "the fuzzer finds the out-of-bounds index");
//! let mut m = Mutator::new(1);
//! assert_ne!(m.mutate(&[b"{\"n\": 12}".to_vec()], 0), b"{\"n\": 12}");
//! ```
// unsafe: `CappedAllocator` implements `GlobalAlloc`, an unsafe trait (SAFETY-commented).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Values that break parsers more often than random ones: signs, powers of two, type limits.
const INTERESTING: [u64; 14] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x1_0000_0000,
    i64::MAX as u64,
    u64::MAX,
];

/// Number spellings that break text formats (JSON, `.npy` headers): huge, negative, non-finite, malformed.
const INTERESTING_NUMBERS: [&str; 12] = [
    "0",
    "-1",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999",
    "1e309",
    "-1e309",
    "NaN",
    "Infinity",
    "1.5",
    "",
    "00000000000000000000000000000000000001",
];

/// Seeded mutations of byte strings: bit flips, interesting bytes and integers (both byte orders), inserted,
/// deleted, duplicated and spliced ranges, truncation, and number rewrites for text formats.
#[derive(Debug, Clone)]
pub struct Mutator {
    rng: ChaCha8Rng,
}

impl Mutator {
    /// A mutator whose choices all follow from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A mutant of `seeds[index]` (1 to 4 stacked mutations; other seeds supply splices).
    pub fn mutate(&mut self, seeds: &[Vec<u8>], index: usize) -> Vec<u8> {
        let mut bytes = seeds[index].clone();
        let rounds = 1 + self.rng.random_range(0..4);
        for _ in 0..rounds {
            self.mutate_once(&mut bytes, seeds);
        }
        bytes
    }

    fn position(&mut self, len: usize) -> usize {
        if len == 0 {
            0
        } else {
            self.rng.random_range(0..len)
        }
    }

    fn mutate_once(&mut self, bytes: &mut Vec<u8>, seeds: &[Vec<u8>]) {
        let len = bytes.len();
        match self.rng.random_range(0..10) {
            0 if len > 0 => {
                let i = self.position(len);
                bytes[i] ^= 1 << self.rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = self.position(len);
                bytes[i] = INTERESTING[self.rng.random_range(0..INTERESTING.len())] as u8;
            }
            2 if len >= 8 => {
                let width = [2usize, 4, 8][self.rng.random_range(0..3)];
                let i = self.position(len - width + 1);
                let v = INTERESTING[self.rng.random_range(0..INTERESTING.len())];
                let le = v.to_le_bytes();
                let be = v.to_be_bytes();
                let src = if self.rng.random::<bool>() {
                    &le[..width]
                } else {
                    &be[8 - width..]
                };
                bytes[i..i + width].copy_from_slice(src);
            }
            3 => {
                let i = self.position(len + 1);
                let n = 1 + self.rng.random_range(0..16);
                let fill: Vec<u8> = (0..n).map(|_| self.rng.random()).collect();
                bytes.splice(i..i, fill);
            }
            4 if len > 0 => {
                let i = self.position(len);
                let n = 1 + self.rng.random_range(0..(len - i).min(64));
                bytes.drain(i..i + n);
            }
            5 if len > 0 => {
                let i = self.position(len);
                let n = 1 + self.rng.random_range(0..(len - i).min(64));
                let copy = bytes[i..i + n].to_vec();
                let at = self.position(len + 1);
                bytes.splice(at..at, copy);
            }
            6 if !seeds.is_empty() => {
                let other = &seeds[self.rng.random_range(0..seeds.len())];
                if !other.is_empty() {
                    let cut = self.position(len + 1);
                    let from = self.position(other.len());
                    bytes.truncate(cut);
                    bytes.extend_from_slice(&other[from..]);
                }
            }
            7 if len > 0 => {
                let keep = self.position(len);
                bytes.truncate(keep);
            }
            _ => self.rewrite_number(bytes),
        }
    }

    /// Replaces a run of ASCII digits (a number in a text header) with an interesting spelling.
    fn rewrite_number(&mut self, bytes: &mut Vec<u8>) {
        let starts: Vec<usize> = (0..bytes.len())
            .filter(|&i| bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()))
            .collect();
        if starts.is_empty() {
            let i = self.position(bytes.len());
            if let Some(b) = bytes.get_mut(i) {
                *b = self.rng.random();
            }
            return;
        }
        let start = starts[self.rng.random_range(0..starts.len())];
        let end = (start..bytes.len())
            .find(|&i| !bytes[i].is_ascii_digit())
            .unwrap_or(bytes.len());
        let with = INTERESTING_NUMBERS[self.rng.random_range(0..INTERESTING_NUMBERS.len())];
        bytes.splice(start..end, with.bytes());
    }
}

/// One finding: the input, and what happened.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The mutated input.
    pub input: Vec<u8>,
    /// The panic message, or the time taken.
    pub what: String,
}

/// What a campaign did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The campaign's name.
    pub name: String,
    /// Inputs tried (seeds included).
    pub executions: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Inputs on which the target panicked.
    pub panics: Vec<Finding>,
    /// Inputs on which one execution took longer than the campaign's limit.
    pub slow: Vec<Finding>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} executions in {:.1} s ({:.0}/s), {} panics, {} slow",
            self.name,
            self.executions,
            self.elapsed.as_secs_f64(),
            self.executions as f64 / self.elapsed.as_secs_f64().max(1e-9),
            self.panics.len(),
            self.slow.len()
        )?;
        for p in self.panics.iter().take(3) {
            write!(f, "\n  panic: {} ({} bytes)", p.what, p.input.len())?;
        }
        for s in self.slow.iter().take(3) {
            write!(f, "\n  slow: {} ({} bytes)", s.what, s.input.len())?;
        }
        Ok(())
    }
}

/// A fuzzing campaign: seed inputs, a budget (time, executions, or both: the first reached ends it), a seed for
/// the mutations, and the time one execution may take.
#[derive(Debug, Clone)]
pub struct Campaign {
    name: String,
    seeds: Vec<Vec<u8>>,
    budget: Option<Duration>,
    executions: Option<u64>,
    seed: u64,
    slow_after: Duration,
}

/// The input being executed, for [`CappedAllocator`]'s report.
static CURRENT: Mutex<Option<(String, Vec<u8>)>> = Mutex::new(None);

impl Campaign {
    /// A campaign named `name` over `seeds`, 1,000 executions by default (none without a seed).
    pub fn new(name: &str, seeds: Vec<Vec<u8>>) -> Self {
        Self {
            name: name.to_string(),
            seeds,
            budget: None,
            executions: Some(1_000),
            seed: 0,
            slow_after: Duration::from_secs(2),
        }
    }

    /// Runs for `budget` of wall time (and no execution count unless [`executions`](Self::executions) follows).
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self.executions = None;
        self
    }

    /// Stops after `n` executions.
    pub fn executions(mut self, n: u64) -> Self {
        self.executions = Some(n);
        self
    }

    /// The mutation seed (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// One execution longer than this is a finding (default 2 s).
    pub fn slow_after(mut self, limit: Duration) -> Self {
        self.slow_after = limit;
        self
    }

    /// The budget from the environment variable `var` in seconds when set (e.g. 600 on a development machine),
    /// else `default`.
    pub fn budget_from_env(self, var: &str, default: Duration) -> Self {
        let budget = std::env::var(var)
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or(default, Duration::from_secs_f64);
        self.budget(budget)
    }

    /// Runs the campaign: every seed first, then mutants, each through `target` with panics caught.
    pub fn run(&self, target: impl Fn(&[u8])) -> Report {
        let mut mutator = Mutator::new(self.seed);
        let start = Instant::now();
        let mut report = Report {
            name: self.name.clone(),
            executions: 0,
            elapsed: Duration::ZERO,
            panics: Vec::new(),
            slow: Vec::new(),
        };
        // Panics are findings, reported once at the end, not printed per input.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        while !self.seeds.is_empty() {
            let done_by_count = self.executions.is_some_and(|n| report.executions >= n);
            let done_by_time = self.budget.is_some_and(|b| start.elapsed() >= b);
            if done_by_count || done_by_time {
                break;
            }
            let i = report.executions as usize;
            let input = if i < self.seeds.len() {
                self.seeds[i].clone()
            } else {
                let which = i % self.seeds.len();
                mutator.mutate(&self.seeds, which)
            };
            if let Ok(mut current) = CURRENT.lock() {
                *current = Some((self.name.clone(), input.clone()));
            }
            let t0 = Instant::now();
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| target(&input)));
            let took = t0.elapsed();
            if let Err(payload) = outcome {
                let what = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic without a message".into());
                report.panics.push(Finding {
                    input: input.clone(),
                    what,
                });
            }
            if took > self.slow_after {
                report.slow.push(Finding {
                    input,
                    what: format!("{:.2} s", took.as_secs_f64()),
                });
            }
            report.executions += 1;
        }
        std::panic::set_hook(hook);
        if let Ok(mut current) = CURRENT.lock() {
            *current = None;
        }
        report.elapsed = start.elapsed();
        report
    }
}

/// A global allocator for fuzzing test binaries: the system allocator, except that one allocation larger than
/// its cap aborts the process after saving the input being executed to the temporary folder
/// (`cadet-fuzz-<campaign>.bin`) and naming it, so a runaway allocation is a reproducible finding rather than
/// an out-of-memory kill.
///
/// ```ignore
/// #[global_allocator]
/// static ALLOCATOR: cadet_core::fuzz::CappedAllocator = cadet_core::fuzz::CappedAllocator::new(1 << 30);
/// ```
#[derive(Debug)]
pub struct CappedAllocator {
    cap: usize,
    tripped: AtomicUsize,
}

impl CappedAllocator {
    /// Allocations over `cap` bytes abort.
    pub const fn new(cap: usize) -> Self {
        Self {
            cap,
            tripped: AtomicUsize::new(0),
        }
    }

    fn report(&self, size: usize) {
        // Only the first trip reports: the report itself allocates (small amounts).
        if self.tripped.swap(1, Ordering::SeqCst) != 0 {
            return;
        }
        let saved = CURRENT
            .try_lock()
            .ok()
            .and_then(|c| c.clone())
            .map(|(name, input)| {
                let safe: String = name
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                let path = std::env::temp_dir().join(format!("cadet-fuzz-{safe}.bin"));
                let _ = std::fs::write(&path, input);
                path.display().to_string()
            })
            .unwrap_or_else(|| "no campaign running".into());
        eprintln!(
            "fuzz: an allocation of {size} bytes (cap {}): the input is saved at {saved}",
            self.cap
        );
    }
}

// SAFETY: every call is forwarded to `System` unchanged, except that over-cap requests return null, which
// `GlobalAlloc` allows (the caller then reports an allocation failure).
unsafe impl GlobalAlloc for CappedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > self.cap {
            self.report(layout.size());
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > self.cap {
            self.report(layout.size());
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > self.cap {
            self.report(new_size);
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_mutants() {
        let seeds = vec![b"{'shape': (3, 4)}".to_vec(), vec![0u8; 40]];
        let a: Vec<Vec<u8>> = {
            let mut m = Mutator::new(5);
            (0..50).map(|i| m.mutate(&seeds, i % 2)).collect()
        };
        let b: Vec<Vec<u8>> = {
            let mut m = Mutator::new(5);
            (0..50).map(|i| m.mutate(&seeds, i % 2)).collect()
        };
        assert_eq!(a, b);
        assert!(
            a.iter()
                .filter(|m| **m != seeds[0] && **m != seeds[1])
                .count()
                > 40
        );
    }

    #[test]
    fn a_campaign_counts_and_finds() {
        let r = Campaign::new("slice", vec![vec![1, 2, 3, 4]])
            .executions(500)
            .run(|b| {
                if b.len() > 6 {
                    panic!("long input");
                }
            });
        assert_eq!(r.executions, 500);
        assert!(!r.panics.is_empty());
        assert!(r.panics.iter().all(|p| p.what == "long input"));
        assert!(r.to_string().contains("500 executions"));
    }
}
