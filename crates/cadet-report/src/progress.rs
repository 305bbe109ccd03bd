//! The example programs' progress lines on stderr: one [`Progress`] printer for all of them, so that every
//! program shows the same thing the same way — the seconds since it started, a line when a phase starts, the
//! phase's counts as it advances (at most about ten lines a phase), and the notes a phase sends (losses,
//! throughputs), all or some.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use cadet_core::Progress;

/// Which of a phase's notes are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notes {
    /// Every note.
    All,
    /// Every `n`-th note of a phase (the `n`-th, the `2n`-th, …).
    Every(u64),
    /// Notes containing this text.
    Containing(&'static str),
    /// None.
    Off,
}

/// Progress lines on stderr, each stamped with the seconds since [`Lines::new`]: see the [module](self).
#[derive(Debug)]
pub struct Lines {
    start: Instant,
    counts: bool,
    notes: Notes,
    done: AtomicU64,
    total: AtomicU64,
    printed_tenths: AtomicU64,
    seen_notes: AtomicU64,
}

impl Default for Lines {
    fn default() -> Self {
        Self::new()
    }
}

impl Lines {
    /// Phase lines only: no counts, no notes.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            counts: false,
            notes: Notes::Off,
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            printed_tenths: AtomicU64::new(0),
            seen_notes: AtomicU64::new(0),
        }
    }

    /// Also print `done/total` as a phase advances, at each tenth of the way.
    pub fn with_counts(mut self) -> Self {
        self.counts = true;
        self
    }

    /// Also print the notes `notes` selects.
    pub fn with_notes(mut self, notes: Notes) -> Self {
        self.notes = notes;
        self
    }

    /// Seconds since [`Lines::new`].
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Prints `message` with the time stamp.
    pub fn line(&self, message: &str) {
        eprintln!("[{:>6.0}s] {message}", self.elapsed());
    }

    /// Whether the `index`-th note of a phase (from 1) with text `message` is printed.
    fn shows(&self, index: u64, message: &str) -> bool {
        match self.notes {
            Notes::All => true,
            Notes::Every(n) => n > 0 && index.is_multiple_of(n),
            Notes::Containing(text) => message.contains(text),
            Notes::Off => false,
        }
    }
}

impl Progress for Lines {
    fn start(&self, what: &str, total: u64) {
        self.done.store(0, Relaxed);
        self.total.store(total, Relaxed);
        self.printed_tenths.store(0, Relaxed);
        self.seen_notes.store(0, Relaxed);
        self.line(&format!("{what} ({total})"));
    }

    fn advance(&self, steps: u64) {
        if !self.counts {
            return;
        }
        let done = self.done.fetch_add(steps, Relaxed) + steps;
        let total = self.total.load(Relaxed);
        // The tenths of the way reached; a line only when a new one is reached (or each step when the total is
        // unknown).
        let tenths = (done.min(total) * 10).checked_div(total).unwrap_or(done);
        if self.printed_tenths.fetch_max(tenths, Relaxed) < tenths {
            self.line(&format!("  {done}/{total}"));
        }
    }

    fn note(&self, message: &str) {
        let index = self.seen_notes.fetch_add(1, Relaxed) + 1;
        if self.shows(index, message) {
            self.line(&format!("  {message}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_selected_as_asked() {
        let every = Lines::new().with_notes(Notes::Every(3));
        let shown: Vec<u64> = (1..=7).filter(|&i| every.shows(i, "")).collect();
        assert_eq!(shown, vec![3, 6]);
        let containing = Lines::new().with_notes(Notes::Containing("0 loss"));
        assert!(containing.shows(1, "step 100 loss 3.2"));
        assert!(!containing.shows(1, "step 101 loss 3.2"));
        assert!(Lines::new().with_notes(Notes::All).shows(5, "x"));
        assert!(!Lines::new().shows(5, "x"));
        assert!(!Lines::new().with_notes(Notes::Every(0)).shows(5, "x"));
    }

    #[test]
    fn counts_reach_each_tenth_once() {
        let lines = Lines::new().with_counts();
        lines.start("phase", 100);
        for _ in 0..100 {
            lines.advance(1);
        }
        assert_eq!(lines.printed_tenths.load(Relaxed), 10);
        assert_eq!(lines.done.load(Relaxed), 100);
        // A new phase starts from nothing.
        lines.start("next", 4);
        assert_eq!(lines.printed_tenths.load(Relaxed), 0);
        lines.advance(1);
        assert_eq!(lines.printed_tenths.load(Relaxed), 2);
    }
}
