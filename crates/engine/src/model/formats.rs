//! How figures and times are written: microseconds for times in
//! milliseconds, RFC 3339 UTC for instants.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

/// Figures are kept to the microsecond (or the thousandth of a Mbit/s or a
/// percent) on output: `2.026`, never the `2.0260000000000002` that a sum of
/// two stamps can give. Values stay exact in memory.
pub mod round_us {
    use serde::Serializer;

    fn round(v: f64) -> f64 {
        if v.is_finite() && v.abs() < 1e12 {
            (v * 1000.0).round() / 1000.0
        } else {
            v
        }
    }

    pub fn val<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(round(*v))
    }

    pub fn opt<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&round(*v)),
            None => s.serialize_none(),
        }
    }
}

/// RFC 3339 UTC with microseconds, always `Z`.
pub mod rfc3339_utc {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn format(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// [`rfc3339_utc`] for an optional time (`null` when absent).
pub mod opt_rfc3339_utc {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => rfc3339_utc::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}
