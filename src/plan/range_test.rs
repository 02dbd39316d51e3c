//! Picking a learning rate from an LR range test (the "LR finder"): smooth the training loss,
//! stop where it blows up, take the LR at the smoothed minimum, divide.

/// Smoothing of the loss (an exponential moving average with bias correction, as in fastai).
const BETA: f64 = 0.98;
/// The test is over once the smoothed loss exceeds this many times its minimum.
const BLOWUP: f64 = 4.0;

/// Given the run's `(learning rate, training loss)` at each step, in step order, returns the
/// learning rate where the smoothed loss is lowest, divided by `divisor` (`pick = min / 10`).
/// Non-finite points end the test. `None` when no point has a finite loss.
pub fn pick_from_range_test(points: &[(f64, f64)], divisor: f64) -> Option<f64> {
    let mut avg = 0.0;
    let mut best: Option<(f64, f64)> = None; // (smoothed loss, lr)
    for (i, &(lr, loss)) in points.iter().enumerate() {
        if !loss.is_finite() || !lr.is_finite() || lr <= 0.0 {
            break;
        }
        avg = BETA * avg + (1.0 - BETA) * loss;
        let smoothed = avg / (1.0 - BETA.powi(i as i32 + 1));
        if let Some((min, _)) = best
            && smoothed > BLOWUP * min
        {
            break;
        }
        if best.is_none_or(|(min, _)| smoothed < min) {
            best = Some((smoothed, lr));
        }
    }
    let divisor = if divisor > 0.0 && divisor.is_finite() { divisor } else { 1.0 };
    best.map(|(_, lr)| crate::lang::eval::tidy(lr / divisor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_a_tenth_of_the_minimum() {
        // Loss falls until lr = 0.1, then explodes.
        let points: Vec<(f64, f64)> = (0..60)
            .map(|i| {
                let lr = 1e-5 * 10f64.powf(f64::from(i) / 10.0);
                let loss = if lr <= 0.1 {
                    5.0 - lr.log10() * -0.0 - (lr.log10() + 5.0) * 0.5
                } else {
                    3.0 + (lr / 0.1).powi(3)
                };
                (lr, loss)
            })
            .collect();
        let pick = pick_from_range_test(&points, 10.0).unwrap();
        assert!(pick > 1e-3 && pick <= 1e-2 + 1e-12, "{pick}");
        assert_eq!(pick_from_range_test(&[], 10.0), None);
        assert_eq!(pick_from_range_test(&[(0.1, f64::NAN)], 10.0), None);
    }
}
