//! Small statistics the report needs: Pearson and Spearman correlation, ranks with ties, and
//! whether a set of swept values is log-spaced.

/// Pearson's r of paired samples; `None` with fewer than 3 finite pairs or no spread.
pub fn pearson(xs: &[f64], ys: &[f64]) -> Option<f64> {
    let pairs: Vec<(f64, f64)> =
        xs.iter().zip(ys).filter(|(x, y)| x.is_finite() && y.is_finite()).map(|(x, y)| (*x, *y)).collect();
    if pairs.len() < 3 {
        return None;
    }
    let n = pairs.len() as f64;
    let mx = pairs.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pairs.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in &pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx).powi(2);
        syy += (y - my).powi(2);
    }
    let denom = (sxx * syy).sqrt();
    (denom > 0.0 && denom.is_finite()).then(|| (sxy / denom).clamp(-1.0, 1.0))
}

/// Spearman's ρ: Pearson's r of the ranks (ties get their mean rank).
pub fn spearman(xs: &[f64], ys: &[f64]) -> Option<f64> {
    let (fx, fy): (Vec<f64>, Vec<f64>) =
        xs.iter().zip(ys).filter(|(x, y)| x.is_finite() && y.is_finite()).map(|(x, y)| (*x, *y)).unzip();
    pearson(&ranks(&fx), &ranks(&fy))
}

/// 1-based ranks; tied values share the mean of the ranks they span.
#[allow(clippy::float_cmp)] // ties are exact equality
pub fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut out = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

/// Whether values are better read on a log axis: all positive, at least 3 distinct, and either
/// spanning two decades or more, or spaced by a near-constant ratio over more than a factor 4
/// (`log(0.001, 1.0, n = 26)`, `[0.01, 0.03, 0.1, 0.3]`). `lin(0.06, 0.14, n = 9)` is not.
pub fn is_log_spaced(values: &[f64]) -> bool {
    let mut xs: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    if xs.len() < 3 || xs[0] <= 0.0 {
        return false;
    }
    let span = xs[xs.len() - 1] / xs[0];
    if span >= 100.0 {
        return true;
    }
    if span <= 4.0 {
        return false;
    }
    // Ratio regularity: log-gaps vary less than linear gaps do.
    let cv = |gaps: &[f64]| {
        let n = gaps.len() as f64;
        let m = gaps.iter().sum::<f64>() / n;
        let var = gaps.iter().map(|g| (g - m).powi(2)).sum::<f64>() / n;
        if m > 0.0 { var.sqrt() / m } else { f64::INFINITY }
    };
    let log_gaps: Vec<f64> = xs.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
    let lin_gaps: Vec<f64> = xs.windows(2).map(|w| w[1] - w[0]).collect();
    cv(&log_gaps) < cv(&lin_gaps)
}

/// Mean of the finite values, if any.
pub fn mean(xs: &[f64]) -> Option<f64> {
    let f: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    (!f.is_empty()).then(|| f.iter().sum::<f64>() / f.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn pearson_of_a_line_is_one_and_of_too_few_points_undefined() {
        assert!(close(pearson(&[1.0, 2.0, 3.0, 4.0], &[2.0, 4.0, 6.0, 8.0]).unwrap(), 1.0));
        assert!(close(pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap(), -1.0));
        assert_eq!(pearson(&[1.0, 2.0], &[1.0, 2.0]), None);
        assert_eq!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
        assert_eq!(pearson(&[], &[]), None);
    }

    #[test]
    fn pearson_matches_a_hand_computed_value() {
        // x = 1..5, y = [2, 4, 5, 4, 5]: sxy = 6, sxx = 10, syy = 6, r = 6 / sqrt(60) = 0.7746...
        let r = pearson(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 4.0, 5.0, 4.0, 5.0]).unwrap();
        assert!(close(r, 6.0 / 60f64.sqrt()), "{r}");
    }

    #[test]
    fn spearman_sees_monotone_curves_and_ties() {
        let xs = [0.001, 0.01, 0.1, 1.0];
        let ys = [1.0, 10.0, 1000.0, 1e6];
        assert!(close(spearman(&xs, &ys).unwrap(), 1.0));
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn nan_pairs_are_dropped() {
        let r = pearson(&[1.0, f64::NAN, 2.0, 3.0], &[1.0, 5.0, 2.0, 3.0]).unwrap();
        assert!(close(r, 1.0));
        assert_eq!(spearman(&[1.0, f64::NAN, 2.0], &[1.0, 2.0, f64::NAN]), None);
    }

    #[test]
    fn log_spacing_is_detected_by_span_and_ratio() {
        let log26: Vec<f64> = (0..26).map(|i| 10f64.powf(-3.0 + 3.0 * f64::from(i) / 25.0)).collect();
        assert!(is_log_spaced(&log26));
        assert!(is_log_spaced(&[0.01, 0.03, 0.1, 0.3]));
        assert!(is_log_spaced(&[0.05, 0.02, 0.03, 0.06, 0.08, 0.01, 0.2]));
        let lin9: Vec<f64> = (0..9).map(|i| 0.06 + 0.01 * f64::from(i)).collect();
        assert!(!is_log_spaced(&lin9));
        assert!(!is_log_spaced(&[0.01, 0.05, 0.1]));
        assert!(!is_log_spaced(&[-1.0, 1.0, 10.0, 1000.0]));
        assert!(!is_log_spaced(&[1.0, 10.0]));
    }
}
