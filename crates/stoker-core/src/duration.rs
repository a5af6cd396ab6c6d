//! Wall-clock budgets written in YAML: `"DD:HH:MM:SS"`, `"HH:MM:SS"`, `"MM:SS"`, or seconds.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A wall-clock duration read from YAML (`"00:12:00:00"` is twelve hours, `90` is 90 seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct WallTime(pub Duration);

impl WallTime {
    /// Parses `"DD:HH:MM:SS"`, `"HH:MM:SS"`, `"MM:SS"` or a number of seconds.
    pub fn parse(text: &str) -> Result<WallTime, String> {
        let parts: Vec<&str> = text.trim().split(':').collect();
        let bad = || {
            format!(
                "`{text}` is not a duration; write \"DD:HH:MM:SS\", \"HH:MM:SS\", \"MM:SS\" or seconds"
            )
        };
        if parts.len() == 1 {
            let seconds: f64 = parts[0].parse().map_err(|_| bad())?;
            if !(seconds.is_finite() && seconds >= 0.0) {
                return Err(bad());
            }
            return Ok(WallTime(Duration::from_secs_f64(seconds)));
        }
        if parts.len() > 4 {
            return Err(bad());
        }
        let mut seconds = 0u64;
        for (i, part) in parts.iter().rev().enumerate() {
            let value: u64 = part.parse().map_err(|_| bad())?;
            let unit = [1, 60, 3600, 86400][i];
            seconds += value * unit;
        }
        Ok(WallTime(Duration::from_secs(seconds)))
    }
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.as_secs();
        write!(
            f,
            "{:02}:{:02}:{:02}:{:02}",
            total / 86400,
            total / 3600 % 24,
            total / 60 % 60,
            total % 60
        )
    }
}

impl Serialize for WallTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for WallTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(f64),
            Text(String),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Seconds(s) => s.to_string(),
            Raw::Text(t) => t,
        };
        WallTime::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lightning_style_durations() {
        assert_eq!(
            WallTime::parse("00:12:00:00").unwrap().0,
            Duration::from_secs(12 * 3600)
        );
        assert_eq!(
            WallTime::parse("01:30:00").unwrap().0,
            Duration::from_secs(5400)
        );
        assert_eq!(WallTime::parse("2:05").unwrap().0, Duration::from_secs(125));
        assert_eq!(
            WallTime::parse("1.5").unwrap().0,
            Duration::from_millis(1500)
        );
        assert!(WallTime::parse("soon").is_err());
        assert_eq!(
            WallTime::parse("00:12:00:00").unwrap().to_string(),
            "00:12:00:00"
        );
        let yaml: WallTime = serde_yaml::from_str("90").unwrap();
        assert_eq!(yaml.0, Duration::from_secs(90));
    }
}
