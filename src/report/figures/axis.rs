//! A logarithmic axis with ticks people can read: decades over wide ranges, 1-2-5 or 1-2-3-5
//! steps over narrow ones (plotters' own log axis labels powers of ten only, which leaves a
//! sweep from 0.02 to 0.08 without a single label).

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};

use crate::report::format;

/// `lo..hi` (both positive) drawn on a log scale.
#[derive(Clone, Debug)]
pub(super) struct LogAxis {
    lo: f64,
    hi: f64,
}

impl LogAxis {
    pub(super) fn new(lo: f64, hi: f64) -> LogAxis {
        let lo = if lo > 0.0 && lo.is_finite() { lo } else { 1e-3 };
        let hi = if hi > lo && hi.is_finite() { hi } else { lo * 10.0 };
        LogAxis { lo, hi }
    }

    /// Round values in `lo..=hi`: the multipliers of each decade, from `mults`.
    fn ticks(&self, mults: &[f64]) -> Vec<f64> {
        let mut out = Vec::new();
        let mut decade = 10f64.powf(self.lo.log10().floor());
        while decade <= self.hi * 1.000_001 {
            for m in mults {
                // Through the decimal text, so 3 × 0.01 is 0.03 and not 0.030000000000000002.
                let v: f64 = format!("{:e}", m * decade).parse().unwrap_or(m * decade);
                let v = (v * 1e12).round() / 1e12;
                let v = if v == 0.0 { m * decade } else { v };
                if v >= self.lo * 0.999_999 && v <= self.hi * 1.000_001 {
                    out.push(v);
                }
            }
            decade *= 10.0;
        }
        out
    }
}

impl Ranged for LogAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let v = if *value > 0.0 { value.log10() } else { self.lo.log10() };
        let (a, b) = (self.lo.log10(), self.hi.log10());
        let t = (v - a) / (b - a);
        (f64::from(limit.0) + t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let max = hint.max_num_points().max(2);
        let light = hint.weight().allow_light_points();
        let sets: [&[f64]; 5] = [
            &[1.0],
            &[1.0, 3.0],
            &[1.0, 2.0, 5.0],
            &[1.0, 2.0, 3.0, 5.0],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        ];
        let mut best = self.ticks(sets[0]);
        for s in &sets[1..] {
            let t = self.ticks(s);
            if t.len() > max {
                break;
            }
            // Labels (bold): enough of them to read the axis, never crowded.
            if !light && best.len() >= 4 {
                break;
            }
            best = t;
        }
        best
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for LogAxis {
    fn format(value: &f64) -> String {
        format::num(*value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_ranges_get_decades_and_narrow_ones_round_steps() {
        let wide = LogAxis::new(0.0008, 1.25);
        assert_eq!(wide.key_points(6usize), vec![0.001, 0.01, 0.1, 1.0]);
        let narrow = LogAxis::new(0.016, 0.1);
        assert_eq!(narrow.key_points(8usize), vec![0.02, 0.03, 0.05, 0.1]);
        let ratio = LogAxis::new(0.4, 5.0);
        assert_eq!(ratio.key_points(8usize), vec![0.5, 1.0, 2.0, 3.0, 5.0]);
        assert_eq!(wide.map(&0.001, (0, 100)), wide.map(&0.001, (0, 100)));
        assert!(wide.map(&0.01, (0, 100)) < wide.map(&0.1, (0, 100)));
    }
}
