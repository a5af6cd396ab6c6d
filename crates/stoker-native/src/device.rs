//! The devices `environment.device` names: which exist on this machine, and the Burn device of
//! each choice (LibTorch on the CPU or on CUDA device N, or Burn's pure-Rust `flex`).

use burn::tensor::Device;
use stoker_core::device::DeviceChoice;

/// How many CUDA devices LibTorch sees.
pub fn cuda_device_count() -> usize {
    if tch::Cuda::is_available() {
        tch::Cuda::device_count().max(0) as usize
    } else {
        0
    }
}

/// The concrete choice `auto` stands for on this machine (CUDA device 0 when LibTorch sees a
/// GPU, else the CPU); any other choice as it is.
pub fn concrete(choice: DeviceChoice) -> DeviceChoice {
    match choice {
        DeviceChoice::Auto if cuda_device_count() > 0 => DeviceChoice::Cuda(0),
        DeviceChoice::Auto => DeviceChoice::Cpu,
        other => other,
    }
}

/// The Burn device (without autodiff) of `choice`, or why it is not available here.
#[allow(deprecated)] // burn-tch is deprecated upstream but is the backend this project targets
pub fn resolve(choice: DeviceChoice) -> Result<Device, String> {
    match concrete(choice) {
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

/// Words for the log: `libtorch cpu`, `libtorch cuda:0`, `flex (pure-Rust cpu)`.
pub fn describe(choice: DeviceChoice) -> String {
    match concrete(choice) {
        DeviceChoice::Cpu => "libtorch cpu".into(),
        DeviceChoice::Cuda(index) => format!("libtorch cuda:{index}"),
        DeviceChoice::Flex => "flex (pure-Rust cpu)".into(),
        DeviceChoice::Auto => unreachable!("concrete() resolves auto"),
    }
}

/// The CUDA index of a LibTorch CUDA `device`, `None` for any other device.
#[allow(deprecated)] // burn-tch is deprecated upstream but is the backend this project targets
pub fn libtorch_cuda_index(device: &Device) -> Option<usize> {
    (0..cuda_device_count()).find(|&i| *device == Device::libtorch_cuda(i))
}

/// Whether `device` (with or without autodiff) is a LibTorch device, CPU or CUDA.
#[allow(deprecated)] // burn-tch is deprecated upstream but is the backend this project targets
pub fn is_libtorch(device: &Device) -> bool {
    let device = device.clone().without_autodiff();
    device == Device::libtorch() || libtorch_cuda_index(&device).is_some()
}
