//! JSON as Python's `json` module writes it: the bare tokens `NaN`, `Infinity` and
//! `-Infinity` for non-finite floats (Optuna's journal holds them: a NaN report, an infinite
//! value), and Optuna's timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// What a non-finite float becomes inside a [`Value`] before [`to_line`] writes it as a bare
/// token (a string nobody writes: it starts with a NUL).
const MARK: char = '\u{0}';

/// A float as a JSON value: a number, or (NaN, ±infinity) a marked string [`to_line`] turns
/// into Python's bare token.
pub fn float(x: f64) -> Value {
    if x.is_finite() {
        serde_json::json!(x)
    } else if x.is_nan() {
        Value::String(format!("{MARK}NaN"))
    } else if x > 0.0 {
        Value::String(format!("{MARK}Infinity"))
    } else {
        Value::String(format!("{MARK}-Infinity"))
    }
}

/// A float of a parsed line: a number or a bare token (as [`parse_line`] marks them).
pub fn as_float(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.strip_prefix(MARK)? {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// The compact JSON text of `value` (no spaces, as Optuna's `separators=(",", ":")`), with
/// marked non-finite floats written as bare tokens.
pub fn to_line(value: &Value) -> String {
    let text = value.to_string();
    if !text.contains("\\u0000") {
        return text;
    }
    text.replace("\"\\u0000NaN\"", "NaN")
        .replace("\"\\u0000Infinity\"", "Infinity")
        .replace("\"\\u0000-Infinity\"", "-Infinity")
}

/// Parses one line of Python JSON: the bare tokens outside strings become marked strings that
/// [`as_float`] reads back.
pub fn parse_line(line: &str) -> Result<Value, serde_json::Error> {
    let mut out = String::with_capacity(line.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let token = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t));
        match token {
            Some(token) => {
                out.push_str(&format!("\"\\u0000{token}\""));
                rest = &rest[token.len()..];
            }
            None => {
                if c == '"' {
                    in_string = true;
                }
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    serde_json::from_str(&out)
}

/// The time now as Optuna 5.0 writes it: UTC, microseconds, `+00:00`
/// (`2026-01-02T03:04:05.123456+00:00`).
pub fn now() -> String {
    timestamp(SystemTime::now())
}

/// `time` as [`now`] writes it.
pub fn timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs() as i64;
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn non_finite_floats_are_pythons_bare_tokens_both_ways() {
        let line = serde_json::json!({"values": [float(f64::NAN), float(0.25)], "v": float(f64::NEG_INFINITY), "s": "NaN"});
        let text = to_line(&line);
        assert_eq!(text, r#"{"s":"NaN","v":-Infinity,"values":[NaN,0.25]}"#);
        let back = parse_line(&text).unwrap();
        assert!(as_float(&back["values"][0]).unwrap().is_nan());
        assert_eq!(as_float(&back["v"]), Some(f64::NEG_INFINITY));
        assert_eq!(back["s"], "NaN");
        // Python's own spelling, tokens inside strings left alone.
        let v = parse_line(r#"{"a":Infinity,"b":"x\"NaN","c":[1e-05,NaN]}"#).unwrap();
        assert_eq!(as_float(&v["a"]), Some(f64::INFINITY));
        assert_eq!(v["b"], "x\"NaN");
        assert_eq!(as_float(&v["c"][0]), Some(1e-5));
        // Every float reads back exactly (serde_json's `float_roundtrip`: its default parser
        // can be one unit in the last place off, e.g. on this value a trial reported).
        let x = 0.092_268_332_839_012_16;
        assert_eq!(as_float(&parse_line(&to_line(&float(x))).unwrap()), Some(x));
    }

    #[test]
    fn timestamps_are_optunas_utc_format() {
        // datetime.fromtimestamp(1767323045.123456, timezone.utc).isoformat(timespec="microseconds")
        let t = UNIX_EPOCH + Duration::from_micros(1_767_323_045_123_456);
        assert_eq!(timestamp(t), "2026-01-02T03:04:05.123456+00:00");
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000000+00:00"
        );
    }
}
