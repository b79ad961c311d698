//! Where a tensor's memory lives.

use std::fmt;

/// The device a [`Tensor`](crate::Tensor) lives on. The CPU backend is always built; CUDA is
/// the cargo feature `cuda`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Device {
    /// Host memory, computed by the CPU backend.
    #[default]
    Cpu,
    /// The NVIDIA GPU with this ordinal.
    Cuda(usize),
    /// A backend registered at run time with
    /// [`register_backend`](crate::backend::register_backend): its data in host memory, its
    /// ops its own (a test backend, a backend under development).
    Registered(usize),
}

/// Why a device cannot be used. Asking for CUDA where there is none is an error, not a panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// This binary was built without the `cuda` feature.
    NoCudaBuild,
    /// The CUDA driver library could not be loaded.
    NoDriver(String),
    /// The driver is there but has no GPU with this ordinal.
    NoGpu(usize),
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::NoCudaBuild => {
                write!(
                    f,
                    "this binary was built without CUDA support (rebuild with `--features cuda`)"
                )
            }
            DeviceError::NoDriver(why) => write!(f, "no CUDA driver could be loaded: {why}"),
            DeviceError::NoGpu(i) => write!(f, "the CUDA driver reports no GPU with ordinal {i}"),
        }
    }
}

impl std::error::Error for DeviceError {}

impl Device {
    /// Parses `cpu`, `cuda` or `cuda:N` and checks that the device can be used.
    pub fn parse(s: &str) -> Result<Device, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Device::cuda(0).map_err(|e| e.to_string()),
            _ => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
                Some(i) => Device::cuda(i).map_err(|e| e.to_string()),
                None => Err(format!(
                    "unknown device `{s}` (expected cpu, cuda or cuda:N)"
                )),
            },
        }
    }

    /// Waits until the work queued on the device has finished: a no-op on the CPU, whose
    /// ops return when done; a GPU's ops return as soon as their kernels are queued, so
    /// timing code calls this before it reads the clock.
    ///
    /// # Panics
    /// If the GPU reports an error from the queued work.
    pub fn synchronize(&self) {
        #[cfg(feature = "cuda")]
        if let Device::Cuda(i) = *self {
            crate::cuda::CudaBackend::get(i)
                .and_then(|b| b.synchronize())
                .unwrap_or_else(|e| panic!("cuda:{i}: {e}"));
        }
    }

    /// The CUDA device `ordinal`, or why it cannot be had.
    pub fn cuda(ordinal: usize) -> Result<Device, DeviceError> {
        crate::backend::cuda_available(ordinal).map(|_| Device::Cuda(ordinal))
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
            Device::Registered(i) => write!(f, "registered:{i}"),
        }
    }
}
