//! A backend that implements only the `Backend` core trains the MLP example: every fused
//! op (softmax, cross-entropy, Adam, ...) runs the `FusedBackend` default, written in the
//! primitives. Each primitive here is the CPU backend's, so the run must match the CPU's
//! up to the rounding of the composed ops.

use std::sync::atomic::{AtomicUsize, Ordering};

use mclrec_tensor::backend::{register_backend, Backend, FusedBackend};
use mclrec_tensor::{BinaryOp, CpuBackend, Device, RandomFill, ReduceOp, Tensor, UnaryOp};
use rand::RngCore;

#[path = "../examples/04_mlp.rs"]
#[allow(dead_code)] // the example's main is not called here
mod mlp;

/// The core primitives, each the CPU's with its output handed to this device.
struct CoreOnly {
    device: Device,
    /// Primitive calls, to show that the work went through this backend.
    calls: AtomicUsize,
}

impl CoreOnly {
    fn mine(&self, t: Tensor<f32>) -> Tensor<f32> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        t.on_host_device(self.device)
    }
}

type T = Tensor<f32>;

impl Backend<f32> for CoreOnly {
    fn device(&self) -> Device {
        self.device
    }
    fn upload(&self, data: Vec<f32>, shape: &[usize]) -> T {
        self.mine(Tensor::from_vec(data, shape))
    }
    fn to_vec(&self, x: &T) -> Vec<f32> {
        x.as_slice().to_vec()
    }
    fn unary(&self, op: UnaryOp<f32>, x: &T) -> T {
        self.mine(CpuBackend.unary(op, x))
    }
    fn unary_backward(&self, op: UnaryOp<f32>, x: &T, y: &T, gy: &T) -> T {
        self.mine(CpuBackend.unary_backward(op, x, y, gy))
    }
    fn binary(&self, op: BinaryOp, a: &T, b: &T, out_shape: &[usize]) -> T {
        self.mine(CpuBackend.binary(op, a, b, out_shape))
    }
    fn matmul(&self, a: &T, b: &T, ta: bool, tb: bool) -> T {
        self.mine(Backend::matmul(&CpuBackend, a, b, ta, tb))
    }
    fn reduce(&self, op: ReduceOp, x: &T, axis: usize) -> T {
        self.mine(CpuBackend.reduce(op, x, axis))
    }
    fn arg_reduce(&self, max: bool, x: &T, axis: usize) -> (T, Vec<usize>) {
        let (v, i) = CpuBackend.arg_reduce(max, x, axis);
        (self.mine(v), i)
    }
    fn gather(&self, x: &T, axis: usize, idx: &[usize], out_shape: &[usize]) -> T {
        self.mine(CpuBackend.gather(x, axis, idx, out_shape))
    }
    fn scatter_add(&self, src: &T, axis: usize, idx: &[usize], shape: &[usize]) -> T {
        self.mine(CpuBackend.scatter_add(src, axis, idx, shape))
    }
    fn broadcast_to(&self, x: &T, shape: &[usize]) -> T {
        self.mine(CpuBackend.broadcast_to(x, shape))
    }
    fn permute(&self, x: &T, perm: &[usize]) -> T {
        self.mine(CpuBackend.permute(x, perm))
    }
    fn concat(&self, xs: &[&T], axis: usize) -> T {
        self.mine(CpuBackend.concat(xs, axis))
    }
    fn narrow(&self, x: &T, axis: usize, start: usize, len: usize) -> T {
        self.mine(CpuBackend.narrow(x, axis, start, len))
    }
    fn index_select(&self, x: &T, axis: usize, idx: &[usize]) -> T {
        self.mine(CpuBackend.index_select(x, axis, idx))
    }
    fn masked_fill(&self, x: &T, mask: &T, value: f32) -> T {
        self.mine(CpuBackend.masked_fill(x, mask, value))
    }
    fn random(&self, fill: RandomFill, shape: &[usize], rng: &mut dyn RngCore) -> T {
        self.mine(CpuBackend.random(fill, shape, rng))
    }
}

/// Nothing overridden: every fused op is its default.
impl FusedBackend<f32> for CoreOnly {}

#[test]
fn a_core_only_backend_trains_the_mlp_example() {
    let mut made: Option<&'static CoreOnly> = None;
    let device = register_backend::<f32>(|device| {
        // The backend learns its device before any tensor is made on it.
        let b: &'static CoreOnly = Box::leak(Box::new(CoreOnly {
            device,
            calls: AtomicUsize::new(0),
        }));
        made = Some(b);
        b
    });
    let backend = made.expect("register_backend calls make");
    let steps = 200;
    let on_core = mlp::train(device, steps);
    let on_cpu = mlp::train(Device::Cpu, steps);
    assert!(
        on_core[steps - 1] < 0.5 * on_core[0],
        "no learning on the core-only backend: {} -> {}",
        on_core[0],
        on_core[steps - 1]
    );
    // Every op of every step went through the registered backend's primitives.
    assert!(backend.calls.load(Ordering::Relaxed) > 20 * steps);
    assert_eq!(on_core.len(), on_cpu.len());
    for (step, (a, b)) in on_core.iter().zip(&on_cpu).enumerate() {
        assert!(
            (a - b).abs() <= 1e-3 * b.abs().max(1.0),
            "step {step}: core-only loss {a}, CPU loss {b}"
        );
    }
}

#[test]
fn a_registered_device_keeps_its_tensors() {
    let device = register_backend::<f32>(|device| {
        Box::leak(Box::new(CoreOnly {
            device,
            calls: AtomicUsize::new(0),
        }))
    });
    let x = Tensor::<f32>::from_f64s(&[1.0, -2.0, 3.0], &[1, 3])
        .to_device(device)
        .unwrap();
    // A fused op (softmax) and a primitive (exp) both give tensors of the device.
    let p = x.softmax();
    assert_eq!(p.device(), device);
    assert_eq!(x.exp().device(), device);
    let want = Tensor::<f32>::from_f64s(&[1.0, -2.0, 3.0], &[1, 3]).softmax();
    assert_eq!(p.shape(), want.shape());
    for (a, b) in p.to_vec().iter().zip(want.to_vec()) {
        assert!((a - b).abs() < 1e-6);
    }
    assert_eq!(
        format!("{device}"),
        format!(
            "registered:{}",
            match device {
                Device::Registered(i) => i,
                _ => unreachable!("register_backend gives a registered device"),
            }
        )
    );
}
