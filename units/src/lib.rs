//! Units as people write them: Go-style durations (`250ms`, `1m30s`, `2h`) or plain
//! seconds, and Kubernetes quantities (`500m`, `16Gi`, `1.5`). Pure, no I/O.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A span of time, stored as whole nanoseconds so arithmetic stays exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub u64);

impl Dur {
    pub const ZERO: Dur = Dur(0);

    pub fn from_secs_f64(s: f64) -> Dur {
        Dur((s * 1e9).round().max(0.0) as u64)
    }
    pub fn from_secs(s: u64) -> Dur {
        Dur(s * 1_000_000_000)
    }
    pub fn from_millis(ms: u64) -> Dur {
        Dur(ms * 1_000_000)
    }
    pub fn nanos(self) -> u64 {
        self.0
    }
    pub fn secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0)
    }
}

impl From<std::time::Duration> for Dur {
    fn from(d: std::time::Duration) -> Dur {
        Dur(d.as_nanos() as u64)
    }
}

/// Parses `1h30m`, `250ms`, `1.5s`, `90` (seconds) and the like.
pub fn parse_duration(text: &str) -> Result<Dur, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return check_secs(secs, text);
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("`{text}` lacks a unit (use h, m, s, ms, us or ns)"))?;
        if num_end == 0 {
            return Err(format!(
                "`{text}` is not a duration (try `90s`, `5m`, `1h30m`)"
            ));
        }
        let number: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("`{}` in `{text}` is not a number", &rest[..num_end]))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            other => {
                return Err(format!(
                    "unknown unit `{other}` in `{text}` (use h, m, s, ms, us or ns)"
                ))
            }
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    check_secs(total, text)
}

fn check_secs(secs: f64, text: &str) -> Result<Dur, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{text}` must be a non-negative duration"));
    }
    if secs > 1e9 {
        return Err(format!("`{text}` is longer than any run can be"));
    }
    Ok(Dur::from_secs_f64(secs))
}

impl fmt::Display for Dur {
    /// The shortest exact Go-style spelling: `1h30m`, `250ms`, `2.5s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns == 0 {
            return write!(f, "0s");
        }
        if ns.is_multiple_of(1_000_000_000) {
            let mut s = ns / 1_000_000_000;
            let h = s / 3600;
            s %= 3600;
            let m = s / 60;
            s %= 60;
            let mut out = String::new();
            if h > 0 {
                out += &format!("{h}h");
            }
            if m > 0 {
                out += &format!("{m}m");
            }
            if s > 0 {
                out += &format!("{s}s");
            }
            return write!(f, "{out}");
        }
        if ns >= 1_000_000_000 {
            return write!(f, "{}s", trim(ns as f64 / 1e9));
        }
        if ns >= 1_000_000 {
            return write!(f, "{}ms", trim(ns as f64 / 1e6));
        }
        if ns >= 1_000 {
            return write!(f, "{}us", trim(ns as f64 / 1e3));
        }
        write!(f, "{ns}ns")
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a duration such as \"250ms\", \"90s\", \"1h30m\" or a number of seconds",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                check_secs(v as f64, &v.to_string()).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                check_secs(v as f64, &v.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                check_secs(v, &v.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A Kubernetes resource quantity (`500m`, `2`, `16Gi`, `1G`), held as a float of
/// base units (cores, bytes, devices).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Quantity(pub f64);

pub fn parse_quantity(text: &str) -> Result<Quantity, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-' || c == '+'))
        .unwrap_or(t.len());
    // `e` can be an exponent or the start of `Ei`: only treat it as a suffix when followed by `i`.
    let (num, suffix) = if t[..split].ends_with('e') && t[split..].starts_with('i') {
        (&t[..split - 1], &t[split - 1..])
    } else {
        (&t[..split], &t[split..])
    };
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a quantity (try `500m`, `2`, `16Gi`)"))?;
    let scale = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        // Powers of two, exact as products; powi's rounding is not specified.
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "Ei" => (1u64 << 60) as f64,
        other => {
            return Err(format!(
                "unknown suffix `{other}` in `{text}` (use m, k, M, G, T, Ki, Mi, Gi or Ti)"
            ))
        }
    };
    let q = value * scale;
    if !q.is_finite() || q < 0.0 {
        return Err(format!("`{text}` must be a non-negative quantity"));
    }
    Ok(Quantity(q))
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Quantity, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Kubernetes quantity such as \"500m\", \"2\" or \"16Gi\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                parse_quantity(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                if v < 0 {
                    return Err(E::custom("a quantity must not be negative"));
                }
                Ok(Quantity(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                if v < 0.0 || !v.is_finite() {
                    return Err(E::custom("a quantity must be a non-negative number"));
                }
                Ok(Quantity(v))
            }
        }
        d.deserialize_any(V)
    }
}

// The JSON Schema of what the Deserialize impls above accept, for editors that
// complete and check scenario files. A number written as text ("90") parses too.
const NUMBER: &str = r"(\d+(\.\d*)?|\.\d+)";

impl schemars::JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let pattern = format!(r"^\s*(({NUMBER}(h|m|s|ms|us|µs|ns))+|{NUMBER}([eE][+-]?\d+)?)\s*$");
        schemars::json_schema!({
            "description": "A duration: \"250ms\", \"90s\", \"1h30m\" (units h, m, s, ms, us, ns), or a number of seconds.",
            "anyOf": [
                { "type": "string", "pattern": pattern },
                { "type": "number", "minimum": 0 }
            ]
        })
    }
}

impl schemars::JsonSchema for Quantity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Quantity".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let pattern = format!(r"^\s*\+?{NUMBER}([eE][+-]?\d+)?(m|k|M|G|T|Ki|Mi|Gi|Ti|Ei)?\s*$");
        schemars::json_schema!({
            "description": "A Kubernetes quantity: \"500m\", \"2\", \"16Gi\", \"1G\", or a non-negative number.",
            "anyOf": [
                { "type": "string", "pattern": pattern },
                { "type": "number", "minimum": 0 }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("1h30m").unwrap(), Dur::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Dur::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Dur::from_millis(1500));
        assert_eq!(parse_duration("90").unwrap(), Dur::from_secs(90));
        assert!(parse_duration("5 minutes")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration("-3s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(parse_quantity("500m").unwrap().0, 0.5);
        assert_eq!(
            parse_quantity("16Gi").unwrap().0,
            16.0 * 1024.0 * 1024.0 * 1024.0
        );
        assert_eq!(parse_quantity("2").unwrap().0, 2.0);
        assert_eq!(parse_quantity("1e3").unwrap().0, 1000.0);
        assert!(parse_quantity("3 cores").is_err());
    }

    proptest! {
        #[test]
        fn display_round_trips(ns in 0u64..400_000_000_000_000) {
            let d = Dur(ns);
            let back = parse_duration(&d.to_string()).unwrap();
            // Display keeps six significant decimals of its unit.
            let tol = (ns as f64 * 1e-6).max(1.0);
            prop_assert!((back.0 as f64 - ns as f64).abs() <= tol, "{} -> {}", ns, back.0);
        }

        #[test]
        fn never_panics(s in "\\PC{0,12}") {
            let _ = parse_duration(&s);
            let _ = parse_quantity(&s);
        }
    }
}
