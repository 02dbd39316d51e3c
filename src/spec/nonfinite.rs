//! Serde for `f64` values that may be NaN or infinite: a diverged run is a result, and JSON has
//! no spelling for those numbers.
//!
//! Finite numbers are written as JSON numbers; NaN, `inf` and `-inf` as the strings `"NaN"`,
//! `"inf"` and `"-inf"` (what Rust's `Display` writes and `str::parse` reads, so the history's
//! CSV spells them the same way). Reading accepts all of these and `null`, which is what older
//! lrx versions wrote for any non-finite number: it reads as NaN, the one thing known of it.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};

/// One number, any value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Float(pub(crate) f64);

impl serde::Serialize for Float {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() { s.serialize_f64(self.0) } else { s.serialize_str(&self.0.to_string()) }
    }
}

impl<'de> serde::Deserialize<'de> for Float {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Float, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Float;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, \"NaN\", \"inf\", \"-inf\" or null")
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<Float, E> {
                Ok(Float(x))
            }
            fn visit_i64<E: de::Error>(self, x: i64) -> Result<Float, E> {
                Ok(Float(x as f64))
            }
            fn visit_u64<E: de::Error>(self, x: u64) -> Result<Float, E> {
                Ok(Float(x as f64))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Float, E> {
                match s {
                    "NaN" | "inf" | "-inf" => s.parse().map(Float).map_err(E::custom),
                    _ => Err(E::invalid_value(de::Unexpected::Str(s), &self)),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<Float, E> {
                Ok(Float(f64::NAN))
            }
            fn visit_none<E: de::Error>(self) -> Result<Float, E> {
                Ok(Float(f64::NAN))
            }
        }
        d.deserialize_any(V)
    }
}

/// `#[serde(with = "nonfinite::num")]` on an `f64` field.
pub(crate) mod num {
    use super::{Deserializer, Float, Serializer};
    use serde::{Deserialize, Serialize};

    #[allow(clippy::trivially_copy_pass_by_ref, reason = "serde's `with` passes a reference")]
    pub(crate) fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        Float(*x).serialize(s)
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Float::deserialize(d).map(|f| f.0)
    }
}

/// `#[serde(with = "nonfinite::map")]` on a `BTreeMap<String, f64>` field.
pub(crate) mod map {
    use super::{BTreeMap, Deserializer, Float, Serializer};
    use serde::{Deserialize, Serialize};

    pub(crate) fn serialize<S: Serializer>(m: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        let wrapped: BTreeMap<&String, Float> = m.iter().map(|(k, v)| (k, Float(*v))).collect();
        wrapped.serialize(s)
    }
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let wrapped = BTreeMap::<String, Float>::deserialize(d)?;
        Ok(wrapped.into_iter().map(|(k, v)| (k, v.0)).collect())
    }
}

/// A history row as one flat object: `step` and its metrics (serde's `flatten` cannot take a
/// `with`, so the row is written by hand).
pub(crate) fn serialize_row<S: Serializer>(
    step: u64,
    metrics: &BTreeMap<String, f64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(metrics.len() + 1))?;
    m.serialize_entry("step", &step)?;
    for (k, v) in metrics {
        m.serialize_entry(k, &Float(*v))?;
    }
    m.end()
}

pub(crate) fn deserialize_row<'de, D: Deserializer<'de>>(d: D) -> Result<(u64, BTreeMap<String, f64>), D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = (u64, BTreeMap<String, f64>);
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a history row: `step` and metrics")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
            let mut step = None;
            let mut metrics = BTreeMap::new();
            while let Some(k) = a.next_key::<String>()? {
                if k == "step" {
                    step = Some(a.next_value::<u64>()?);
                } else {
                    metrics.insert(k, a.next_value::<Float>()?.0);
                }
            }
            Ok((step.ok_or_else(|| de::Error::missing_field("step"))?, metrics))
        }
    }
    d.deserialize_map(V)
}

#[cfg(test)]
mod tests {
    use super::Float;

    #[test]
    fn every_value_round_trips() {
        for x in [0.0, -1.5, 1e-300, f64::MAX, f64::INFINITY, f64::NEG_INFINITY] {
            let text = serde_json::to_string(&Float(x)).unwrap();
            assert_eq!(serde_json::from_str::<Float>(&text).unwrap().0.to_bits(), x.to_bits(), "{text}");
        }
        let nan = serde_json::to_string(&Float(f64::NAN)).unwrap();
        assert_eq!(nan, "\"NaN\"");
        assert!(serde_json::from_str::<Float>(&nan).unwrap().0.is_nan());
        assert!(serde_json::from_str::<Float>("null").unwrap().0.is_nan());
        assert!(serde_json::from_str::<Float>("\"1.0\"").is_err());
    }
}
