//! Picking a learning rate from an LR range test (the "LR finder"): cut the curve where the
//! loss blows up, smooth it without lag, and read the pick off it (`min / 10` or `steepest`).
//!
//! Why not the usual exponential moving average: with β = 0.98 it lags ~50 points, half of a
//! 100-step test, and its minimum lands an order of magnitude too high (measured: raw minimum
//! at 0.275, smoothed at 6.6). A centred moving average has no lag: point i averages as many
//! points after it as before it.

pub use crate::lang::study::Pick;

/// One step of the test: the learning rate, the training loss, and the smoothed loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub lr: f64,
    pub loss: f64,
    pub smoothed: f64,
}

/// What a range test's curve says.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// The usable points, in step order: finite, before the loss exceeded `stop` × its minimum.
    pub points: Vec<Point>,
    /// Index of the lowest smoothed loss.
    pub minimum: usize,
    /// The picked value (15 significant digits).
    pub value: f64,
    /// Whether the curve was cut (the loss blew up or stopped being finite) before its end.
    pub stopped: bool,
}

/// Half-width of the centred moving average: 2 for a 100-step test (5 points), at most 5.
fn half_width(n: usize) -> usize {
    (n / 50).clamp(1, 5)
}

/// Given the run's `(learning rate, training loss)` at each step, in step order, the curve up
/// to where the loss exceeds `stop` times its lowest value so far (or stops being finite), its
/// centred moving average, and the pick: the learning rate at the lowest smoothed loss divided
/// by the divisor, or the one where the smoothed loss falls fastest against log(lr). `None`
/// when fewer than two points are usable, or `steepest` finds no falling stretch.
pub fn analyse(raw: &[(f64, f64)], pick: Pick, stop: f64) -> Option<Analysis> {
    let stop = if stop > 1.0 && stop.is_finite() { stop } else { f64::INFINITY };
    let mut kept: Vec<(f64, f64)> = Vec::new();
    let mut low = f64::INFINITY;
    let mut stopped = false;
    for &(lr, loss) in raw {
        if !loss.is_finite() || !lr.is_finite() || lr <= 0.0 || loss > stop * low {
            stopped = true;
            break;
        }
        low = low.min(loss);
        kept.push((lr, loss));
    }
    if kept.len() < 2 {
        return None;
    }
    let n = kept.len();
    let h = half_width(n);
    let points: Vec<Point> = (0..n)
        .map(|i| {
            // Symmetric at the ends too (the window shrinks), so no point leans on one side.
            let w = h.min(i).min(n - 1 - i);
            let window = &kept[i - w..=i + w];
            let smoothed = window.iter().map(|p| p.1).sum::<f64>() / window.len() as f64;
            Point { lr: kept[i].0, loss: kept[i].1, smoothed }
        })
        .collect();
    let minimum = (0..n).fold(0, |best, i| if points[i].smoothed < points[best].smoothed { i } else { best });
    let value = match pick {
        Pick::Min { divisor } => {
            let divisor = if divisor > 0.0 && divisor.is_finite() { divisor } else { 1.0 };
            points[minimum].lr / divisor
        }
        Pick::Steepest => {
            // Central differences of the smoothed loss against ln(lr), before the minimum.
            let slope = |i: usize| {
                let (a, b) = (&points[i - 1], &points[i + 1]);
                (b.smoothed - a.smoothed) / (b.lr.ln() - a.lr.ln())
            };
            let steepest = (1..minimum.min(n - 1))
                .map(|i| (i, slope(i)))
                .filter(|(_, s)| s.is_finite() && *s < 0.0)
                .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))?;
            points[steepest.0].lr
        }
    };
    Some(Analysis { points, minimum, value: crate::lang::eval::tidy(value), stopped })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loss falling linearly in log(lr) until `best`, then rising steeply; `noise` adds a
    /// deterministic zig-zag of that amplitude.
    fn curve(n: usize, best: f64, noise: f64) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| {
                let lr = 1e-6 * 10f64.powf(6.0 * i as f64 / (n - 1) as f64);
                let loss = if lr <= best {
                    5.0 - 0.3 * (lr / 1e-6).log10()
                } else {
                    5.0 - 0.3 * (best / 1e-6).log10() + 8.0 * (lr / best).log10().powi(2)
                };
                (lr, loss + if i % 2 == 0 { noise } else { -noise })
            })
            .collect()
    }

    #[test]
    #[allow(clippy::float_cmp, reason = "the pick is the minimum's LR, exactly")]
    fn picks_a_tenth_of_the_lowest_loss_without_lag() {
        // The old EMA (β = 0.98) put this minimum past lr = 1: a pick 10-100 × too high.
        let a = analyse(&curve(100, 0.1, 0.0), Pick::Min { divisor: 10.0 }, 4.0).unwrap();
        let at = a.points[a.minimum].lr;
        assert!((0.05..=0.2).contains(&at), "minimum at {at}");
        assert!((0.005..=0.02).contains(&a.value), "pick {}", a.value);
        let min = analyse(&curve(100, 0.1, 0.0), Pick::Min { divisor: 1.0 }, 4.0).unwrap();
        assert_eq!(min.value, crate::lang::eval::tidy(at));
    }

    #[test]
    #[allow(clippy::float_cmp, reason = "the raw loss is recorded as given")]
    fn one_lucky_batch_does_not_move_the_pick() {
        let mut raw = curve(100, 0.01, 0.02);
        // A single very low loss at a far too high LR.
        raw[90].1 = 0.5;
        let a = analyse(&raw, Pick::Min { divisor: 10.0 }, 100.0).unwrap();
        assert!(a.value < 0.005, "pick {}", a.value);
        // Every point is recorded with its raw and smoothed loss.
        assert_eq!(a.points[90].loss, 0.5);
        assert!(a.points[90].smoothed > 1.0);
    }

    #[test]
    fn stops_where_the_loss_exceeds_k_times_its_minimum() {
        let raw = curve(100, 0.01, 0.0);
        let low = raw.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let a = analyse(&raw, Pick::Min { divisor: 10.0 }, 4.0).unwrap();
        assert!(a.stopped);
        let cut = raw.iter().position(|p| p.1 > 4.0 * low).unwrap();
        assert_eq!(a.points.len(), cut);
        assert!(a.points.iter().all(|p| p.loss <= 4.0 * low));
        let wide = analyse(&raw, Pick::Min { divisor: 10.0 }, 1e9).unwrap();
        assert!(!wide.stopped && wide.points.len() == 100);
        // A non-finite loss ends the curve too.
        let mut nan = raw.clone();
        nan[50].1 = f64::NAN;
        assert_eq!(analyse(&nan, Pick::Min { divisor: 10.0 }, 1e9).unwrap().points.len(), 50);
    }

    #[test]
    fn steepest_picks_where_the_loss_falls_fastest() {
        // Flat, then falling fast around 1e-3, then flat, then blowing up at 0.1.
        let raw: Vec<(f64, f64)> = (0..100)
            .map(|i| {
                let lr = 1e-6 * 10f64.powf(6.0 * f64::from(i) / 99.0);
                let x = lr.log10() + 3.0;
                let loss = if lr < 0.1 { 4.0 - 2.0 * (x * 3.0).tanh() } else { 2.0 + 10.0 * (lr / 0.1) };
                (lr, loss)
            })
            .collect();
        let a = analyse(&raw, Pick::Steepest, 4.0).unwrap();
        assert!((5e-4..=2e-3).contains(&a.value), "pick {}", a.value);
    }

    #[test]
    fn too_few_points_pick_nothing() {
        assert_eq!(analyse(&[], Pick::Min { divisor: 10.0 }, 4.0), None);
        assert_eq!(analyse(&[(0.1, f64::NAN)], Pick::Min { divisor: 10.0 }, 4.0), None);
        assert_eq!(analyse(&[(0.1, 2.0)], Pick::Min { divisor: 10.0 }, 4.0), None);
        // A loss that only rises has no falling stretch to be steepest on.
        let rising: Vec<(f64, f64)> = (1..20).map(|i| (f64::from(i) * 0.01, f64::from(i))).collect();
        assert_eq!(analyse(&rising, Pick::Steepest, 1e9), None);
    }
}
