//! Delivery gaps: the time between consecutive media messages a viewer received, split into
//! the gaps before a burst window, those that touch it, and those after it.

use std::ops::Range;

/// The longest gaps of one viewer, in nanoseconds; `None` where no gap fell in that part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Longest {
    /// Longest gap that ends at or before the burst window opens.
    pub before: Option<u64>,
    /// Longest gap that overlaps the burst window.
    pub in_burst: Option<u64>,
    /// Longest gap that starts at or after the burst window closes.
    pub after: Option<u64>,
    /// Where the longest gap of all ends (ns since the epoch).
    pub worst_end: Option<u64>,
}

impl Longest {
    /// The longest gap before or after the burst window.
    pub fn outside(&self) -> Option<u64> {
        self.before.max(self.after)
    }
}

/// The longest gaps within the measured `window` of a viewer whose media messages arrived at
/// `arrivals` (ns since the run's epoch, ascending; several messages of one read may share a
/// time).
///
/// The gaps are the intervals between consecutive arrivals, starting from the last arrival at
/// or before the window opens (or the opening itself, if there was none) and closing with the
/// window's end (a viewer that goes silent has a gap until the window closes). A gap `a..b`
/// belongs to the burst when it overlaps `burst` (`a < burst.end && b > burst.start`); else it
/// is before (`b <= burst.start`) or after it.
pub fn longest(arrivals: &[u64], window: Range<u64>, burst: Range<u64>) -> Longest {
    let mut out = Longest::default();
    if window.is_empty() {
        return out;
    }
    // The first point: the last arrival at or before the window opens.
    let first = arrivals.partition_point(|&t| t <= window.start);
    let mut prev = match first {
        0 => window.start,
        i => arrivals[i - 1],
    };
    let inside = arrivals[first..]
        .iter()
        .copied()
        .take_while(|&t| t < window.end);
    let mut worst = 0;
    for b in inside.chain(std::iter::once(window.end)) {
        let gap = b - prev;
        let slot = if b <= burst.start {
            &mut out.before
        } else if prev >= burst.end {
            &mut out.after
        } else {
            &mut out.in_burst
        };
        *slot = Some(slot.map_or(gap, |g| g.max(gap)));
        if gap > worst || out.worst_end.is_none() {
            worst = gap;
            out.worst_end = Some(b);
        }
        prev = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn ms(v: &[u64]) -> Vec<u64> {
        v.iter().map(|t| t * MS).collect()
    }

    #[test]
    fn steady_arrivals_have_their_period_as_gap() {
        let a: Vec<u64> = (0..=100).map(|i| i * 40 * MS).collect();
        let g = longest(&a, 1000 * MS..3000 * MS, 2000 * MS..2500 * MS);
        assert_eq!(g.before, Some(40 * MS));
        assert_eq!(g.in_burst, Some(40 * MS));
        assert_eq!(g.after, Some(40 * MS));
    }

    #[test]
    fn a_gap_overlapping_the_burst_counts_in_it() {
        // 40 ms steps, then nothing from 1960 to 2300 (it starts before the burst window).
        let mut a: Vec<u64> = (0..=49).map(|i| i * 40).collect();
        a.extend((0..=20).map(|i| 2300 + i * 40));
        let g = longest(&ms(&a), 1000 * MS..3000 * MS, 2000 * MS..2500 * MS);
        assert_eq!(g.in_burst, Some(340 * MS));
        assert_eq!(g.before, Some(40 * MS));
        assert_eq!(g.after, Some(40 * MS));
        assert_eq!(g.worst_end, Some(2300 * MS));
    }

    #[test]
    fn gaps_ending_at_the_burst_start_or_starting_at_its_end_are_outside() {
        let a = ms(&[1000, 1100, 2000, 2010, 2500, 2700, 2800, 3000]);
        let g = longest(&a, 1000 * MS..3000 * MS, 2000 * MS..2500 * MS);
        // 1100..2000 ends where the burst starts; 2500..2700 starts where it ends.
        assert_eq!(g.before, Some(900 * MS));
        assert_eq!(g.in_burst, Some(490 * MS));
        assert_eq!(g.after, Some(200 * MS));
        assert_eq!(g.outside(), Some(900 * MS));
    }

    #[test]
    fn the_gap_across_the_window_start_counts_from_the_arrival_before_it() {
        let a = ms(&[900, 1200, 1240]);
        let g = longest(&a, 1000 * MS..1300 * MS, 5000 * MS..6000 * MS);
        // 900..1200 (300), 1200..1240, then silence until the window closes at 1300 (60).
        assert_eq!(g.before, Some(300 * MS));
        assert_eq!((g.in_burst, g.after), (None, None));
        // An arrival exactly at the window start is the first point.
        let g = longest(&ms(&[1000, 1100]), 1000 * MS..1300 * MS, 0..0);
        assert_eq!(g.after, Some(200 * MS));
    }

    #[test]
    fn a_viewer_that_goes_silent_has_a_gap_until_the_window_closes() {
        let a = ms(&[0, 40, 80, 1500]);
        let g = longest(&a, 1000 * MS..3000 * MS, 1200 * MS..1400 * MS);
        // 80..1500 overlaps the burst; 1500..3000 (silence to the end) does not.
        assert_eq!(g.in_burst, Some(1420 * MS));
        assert_eq!(g.after, Some(1500 * MS));
        assert_eq!(g.before, None);
        assert_eq!(g.worst_end, Some(3000 * MS));
        // Nothing at all: one gap, the whole window.
        let g = longest(&[], 1000 * MS..3000 * MS, 1200 * MS..1400 * MS);
        assert_eq!(g.in_burst, Some(2000 * MS));
        assert_eq!(g.outside(), None);
    }

    #[test]
    fn arrivals_after_the_window_are_ignored_and_equal_times_give_zero_gaps() {
        let a = ms(&[1000, 1050, 1050, 1050, 1090, 5000]);
        let g = longest(&a, 1000 * MS..1100 * MS, 0..0);
        assert_eq!(g.after, Some(50 * MS));
        assert_eq!(longest(&a, 10..10, 0..0), Longest::default());
    }
}
