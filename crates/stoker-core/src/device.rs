//! `environment.device`: which backend and device a run uses, chosen at run time. Which devices
//! exist on this machine (and the Burn device each choice is) is `stoker-native`'s `device`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The device named by `environment.device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// LibTorch on CUDA device 0 when a GPU is visible, else LibTorch on the CPU.
    #[default]
    Auto,
    /// LibTorch on the CPU.
    Cpu,
    /// LibTorch on CUDA device N.
    Cuda(usize),
    /// Burn's pure-Rust `flex` CPU backend.
    Flex,
}

const CHOICES: &str = "auto, cpu, cuda, cuda:N, flex";

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(0)),
            "flex" => Ok(DeviceChoice::Flex),
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(index)) => Ok(DeviceChoice::Cuda(index)),
                _ => Err(format!(
                    "unknown device `{text}`, expected one of {CHOICES}"
                )),
            },
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(index) => write!(f, "cuda:{index}"),
            DeviceChoice::Flex => f.write_str("flex"),
        }
    }
}

impl Serialize for DeviceChoice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for DeviceChoice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("CPU".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
        assert_eq!("flex".parse(), Ok(DeviceChoice::Flex));
        let error = "tpu".parse::<DeviceChoice>().unwrap_err();
        assert!(error.contains("auto, cpu, cuda, cuda:N, flex"), "{error}");
        assert_eq!(DeviceChoice::Cuda(2).to_string(), "cuda:2");
    }
}
