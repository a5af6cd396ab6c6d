//! `environment.device`: which backend and device a run uses, chosen at run time.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
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

/// How many CUDA devices LibTorch sees.
pub fn cuda_device_count() -> usize {
    if tch::Cuda::is_available() {
        tch::Cuda::device_count().max(0) as usize
    } else {
        0
    }
}

impl DeviceChoice {
    /// The concrete choice `auto` stands for on this machine.
    pub fn concrete(self) -> DeviceChoice {
        match self {
            DeviceChoice::Auto if cuda_device_count() > 0 => DeviceChoice::Cuda(0),
            DeviceChoice::Auto => DeviceChoice::Cpu,
            other => other,
        }
    }

    /// The Burn device (without autodiff), or why it is not available here.
    #[allow(deprecated)] // burn-tch is deprecated upstream but is the backend this project targets
    pub fn device(self) -> Result<Device, String> {
        match self.concrete() {
            DeviceChoice::Cpu => Ok(Device::libtorch()),
            DeviceChoice::Flex => Ok(Device::flex()),
            DeviceChoice::Cuda(index) => {
                let count = cuda_device_count();
                if index < count {
                    Ok(Device::libtorch_cuda(index))
                } else if count == 0 {
                    Err(format!(
                        "`cuda:{index}` was asked for, but LibTorch sees no CUDA device on this machine"
                    ))
                } else {
                    Err(format!(
                        "`cuda:{index}` was asked for, but LibTorch sees only {count} CUDA device(s) (cuda:0..cuda:{})",
                        count - 1
                    ))
                }
            }
            DeviceChoice::Auto => unreachable!("concrete() resolves auto"),
        }
    }

    /// Words for the log: `libtorch cpu`, `libtorch cuda:0`, `flex (pure Rust, cpu)`.
    pub fn describe(self) -> String {
        match self.concrete() {
            DeviceChoice::Cpu => "libtorch cpu".into(),
            DeviceChoice::Cuda(index) => format!("libtorch cuda:{index}"),
            DeviceChoice::Flex => "flex (pure-Rust cpu)".into(),
            DeviceChoice::Auto => unreachable!("concrete() resolves auto"),
        }
    }
}

/// The CUDA index of a LibTorch CUDA `device`, `None` for any other device.
#[allow(deprecated)] // burn-tch is deprecated upstream but is the backend this project targets
pub fn libtorch_cuda_index(device: &Device) -> Option<usize> {
    (0..cuda_device_count()).find(|&i| *device == Device::libtorch_cuda(i))
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
