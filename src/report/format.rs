//! How numbers, durations and metric names read in tables and figures.

use crate::spec::Goal;
use crate::spec::Value;

/// A metric value with five significant digits and no exponent for everyday magnitudes:
/// `5.9123`, `0.18012`, `363.47`, `59650`. `NaN` and infinities read as such.
pub fn num(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".to_owned() } else { "-inf".to_owned() };
    }
    if x == 0.0 {
        return "0".to_owned();
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-5..15).contains(&mag) {
        return format!("{x:.4e}");
    }
    let decimals = (4 - mag).max(0) as usize;
    let s = format!("{x:.decimals$}");
    trim_zeros(&s)
}

/// Like [`num`], with an explicit sign: `+0.012`, `−0.034` (a real minus sign).
pub fn signed(x: f64) -> String {
    if x > 0.0 {
        format!("+{}", num(x))
    } else if x < 0.0 {
        format!("\u{2212}{}", num(-x))
    } else {
        num(x)
    }
}

/// A relative change in percent with two significant decimals: `+2.13 %`.
pub fn percent(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".to_owned();
    }
    let s = format!("{:.2}", x.abs());
    let sign = if x > 0.0 && s != "0.00" {
        "+"
    } else if x < 0.0 && s != "0.00" {
        "\u{2212}"
    } else {
        ""
    };
    format!("{sign}{s} %")
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s.to_owned() }
}

pub use crate::spec::value::human_duration as duration;

/// A throughput: `59650`.
pub fn rate(x: f64) -> String {
    if x.is_finite() { format!("{x:.0}") } else { "—".to_owned() }
}

/// Metric columns in the order a researcher reads them; others follow alphabetically.
pub fn metric_order(names: &mut Vec<String>) {
    const ORDER: [&str; 9] = [
        "val_loss",
        "val_accuracy",
        "val_ppl",
        "val_bpb",
        "train_loss",
        "aux_loss",
        "grad_norm",
        "tokens_per_sec",
        "acc_per_min",
    ];
    names.sort_by_key(|n| (ORDER.iter().position(|o| o == n).unwrap_or(ORDER.len()), n.clone()));
    names.dedup();
}

/// An axis label with units for a metric name.
pub fn metric_label(name: &str) -> String {
    match name {
        "val_loss" => "val loss (nats/token)".to_owned(),
        "train_loss" => "train loss (nats/token)".to_owned(),
        "val_accuracy" => "val accuracy (top-1, fraction)".to_owned(),
        "val_ppl" => "val perplexity".to_owned(),
        "val_bpb" => "val bits per byte".to_owned(),
        "aux_loss" => "aux (balance) loss".to_owned(),
        "acc_per_min" => "val accuracy per minute".to_owned(),
        "tokens_per_sec" => "tokens/s".to_owned(),
        "grad_norm" => "grad norm".to_owned(),
        other => other.replace('_', " "),
    }
}

/// Which way is better for a metric other than the objective (for sorting and colours).
pub fn metric_goal(name: &str) -> Goal {
    if name.contains("acc") || name.contains("per_sec") || name.contains("per_min") {
        Goal::Maximize
    } else {
        Goal::Minimize
    }
}

/// A config value for labels and table cells: numbers with five significant digits
/// (`0.0031623`), the rest in canonical form. Variant names keep the exact values.
pub fn value(v: &Value) -> String {
    let join = |items: &[Value]| items.iter().map(value).collect::<Vec<_>>().join(",");
    match v {
        Value::Float(x) => num(*x),
        Value::Tuple(items) => format!("({})", join(items)),
        Value::List(items) => format!("[{}]", join(items)),
        Value::Call(c) => format!(
            "{}({})",
            c.name,
            c.args.iter().map(|(n, a)| format!("{n}={}", value(a))).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// Shortens a label to `max` characters with an ellipsis.
pub fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_five_significant_digits() {
        assert_eq!(num(5.912_345), "5.9123");
        assert_eq!(num(0.180_123), "0.18012");
        assert_eq!(num(363.474), "363.47");
        assert_eq!(num(59_650.2), "59650");
        assert_eq!(num(0.001), "0.001");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(-0.5), "-0.5");
        assert_eq!(num(f64::NAN), "NaN");
        assert_eq!(num(1e-9), "1.0000e-9");
        assert_eq!(num(0.0), "0");
    }

    #[test]
    fn signs_percentages_and_durations_read_naturally() {
        assert_eq!(signed(0.012), "+0.012");
        assert_eq!(signed(-0.034), "\u{2212}0.034");
        assert_eq!(percent(-2.1345), "\u{2212}2.13 %");
        assert_eq!(percent(0.0001), "0.00 %");
        assert_eq!(duration(41.23), "41.2 s");
        assert_eq!(duration(192.0), "3 m 12 s");
        assert_eq!(duration(7500.0), "2 h 05 m");
        assert_eq!(duration(f64::NAN), "—");
    }

    #[test]
    fn metrics_sort_in_reading_order() {
        let mut m = vec!["zeta".to_owned(), "val_ppl".to_owned(), "val_loss".to_owned(), "alpha".to_owned()];
        metric_order(&mut m);
        assert_eq!(m, ["val_loss", "val_ppl", "alpha", "zeta"]);
        assert_eq!(ellipsize("abcdef", 4), "abc…");
        let call = Value::Call(crate::spec::Call {
            name: "cosine".into(),
            args: vec![("warmup".into(), Value::Float(0.031_622_776_601_683_79))],
        });
        assert_eq!(value(&call), "cosine(warmup=0.031623)");
    }
}
