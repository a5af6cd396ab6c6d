//! Mixed precision in the native ops: what runs in the compute type, what comes back in f32,
//! and how far it lands from float32.

#![allow(deprecated)] // Device::libtorch: burn-tch is deprecated upstream but is stoker's backend

use super::autocast::{ComputeType, compute_type, with_compute_type};
use super::*;
use burn::nn::LinearConfig;
use burn::nn::attention::MultiHeadAttentionConfig;
use burn::nn::conv::{Conv1dConfig, Conv2dConfig};
use burn::tensor::{DType, Device, Distribution, Tensor};

fn device() -> Device {
    Device::libtorch().autodiff()
}

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    assert_eq!(t.dtype(), DType::F32, "an f32 tensor");
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Bits of an f32's 23-bit mantissa that a value computed in `ty` and widened to f32 leaves
/// zero: 16 for bf16 (7 mantissa bits), 13 for fp16 (10).
fn low_bits(ty: ComputeType) -> u32 {
    match ty {
        ComputeType::BFloat16 => 0xFFFF,
        ComputeType::Float16 => 0x1FFF,
    }
}

/// Whether every value was rounded to `ty` (what a product computed in f32 almost never is).
fn all_in(ty: ComputeType, values: &[f32]) -> bool {
    values.iter().all(|v| v.to_bits() & low_bits(ty) == 0)
}

/// `a` within `relative` of `b`'s largest magnitude, value by value.
fn assert_near(what: &str, a: &[f32], b: &[f32], relative: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= relative * scale,
            "{what}[{i}]: {x} against {y} (scale {scale})"
        );
    }
}

/// Worst-case relative error of a product of a few dozen terms in each type (the inputs'
/// rounding and the output's), with room to spare.
fn tolerance(ty: ComputeType) -> f32 {
    match ty {
        ComputeType::BFloat16 => 3e-2,
        ComputeType::Float16 => 4e-3,
    }
}

#[test]
fn the_compute_type_is_set_for_a_scope_and_restored_after_a_panic() {
    assert_eq!(compute_type(), None);
    with_compute_type(Some(ComputeType::BFloat16), || {
        assert_eq!(compute_type(), Some(ComputeType::BFloat16));
        with_compute_type(None, || assert_eq!(compute_type(), None));
        assert_eq!(compute_type(), Some(ComputeType::BFloat16));
    });
    assert_eq!(compute_type(), None);
    let panicked = std::panic::catch_unwind(|| {
        with_compute_type(Some(ComputeType::Float16), || panic!("in the forward pass"))
    });
    assert!(panicked.is_err());
    assert_eq!(compute_type(), None, "restored when the scope panicked");
}

#[test]
fn linear_computes_in_the_compute_type_and_gives_f32_gradients() {
    let device = device();
    let layer = LinearConfig::new(24, 5).init(&device);
    let x = random([4, 3, 24], &device).require_grad();
    let weights = random([4, 3, 5], &device);
    let f32_run = || {
        let y = linear(&layer, x.clone());
        let grads = (y.clone() * weights.clone()).sum().backward();
        let gw = layer.weight.grad(&grads).unwrap();
        let gx = x.grad(&grads).unwrap();
        (values(y), values(gw), values(gx))
    };
    let (y32, gw32, gx32) = f32_run();
    assert!(
        !all_in(ComputeType::BFloat16, &y32),
        "f32 outside the scope"
    );
    for ty in [ComputeType::BFloat16, ComputeType::Float16] {
        let (y, gw, gx) = with_compute_type(Some(ty), f32_run);
        assert!(
            all_in(ty, &y),
            "{ty:?}: the product is rounded to the compute type"
        );
        assert_near("output", &y, &y32, tolerance(ty));
        // The gradients come back to the f32 weight and input as f32, through the casts.
        assert_near("weight grad", &gw, &gw32, tolerance(ty));
        assert_near("input grad", &gx, &gx32, tolerance(ty));
        assert!(
            all_in(ty, &gx),
            "{ty:?}: the input's gradient is a product in the compute type"
        );
    }
    // Outside autodiff (validation) as well.
    let eval = LinearConfig::new(24, 5).init(&Device::libtorch());
    let x = random([6, 24], &Device::libtorch());
    let y = with_compute_type(Some(ComputeType::BFloat16), || linear(&eval, x.clone()));
    assert!(all_in(ComputeType::BFloat16, &values(y)));
}

#[test]
fn convolutions_compute_in_the_compute_type_in_training_and_evaluation() {
    let device = device();
    let conv = Conv1dConfig::new(3, 4, 3).init(&device);
    let x = random([2, 3, 16], &device).require_grad();
    let run = || {
        let y = conv1d(&conv, x.clone());
        let grads = y.clone().sum().backward();
        (values(y), values(conv.weight.grad(&grads).unwrap()))
    };
    let (y32, gw32) = run();
    let (y, gw) = with_compute_type(Some(ComputeType::BFloat16), run);
    assert!(all_in(ComputeType::BFloat16, &y));
    assert_near("conv1d", &y, &y32, tolerance(ComputeType::BFloat16));
    assert_near(
        "conv1d weight grad",
        &gw,
        &gw32,
        tolerance(ComputeType::BFloat16),
    );
    // A kernel wider than the CPU's native-backward limit, and evaluation, too.
    let wide = Conv1dConfig::new(1, 2, 64)
        .with_stride(8)
        .init(&Device::libtorch());
    let x = random([2, 1, 256], &Device::libtorch());
    let y = with_compute_type(Some(ComputeType::BFloat16), || conv1d(&wide, x.clone()));
    assert!(all_in(ComputeType::BFloat16, &values(y.clone())));
    assert_near("wide conv1d", &values(y), &values(wide.forward(x)), 3e-2);
    let conv2 = Conv2dConfig::new([2, 3], [3, 3]).init(&device);
    let x = random([2, 2, 8, 8], &device);
    let y = with_compute_type(Some(ComputeType::Float16), || conv2d(&conv2, x.clone()));
    assert!(all_in(ComputeType::Float16, &values(y.clone())));
    assert_near(
        "conv2d",
        &values(y),
        &values(conv2.forward(x)),
        tolerance(ComputeType::Float16),
    );
}

#[test]
fn attention_computes_in_the_compute_type() {
    let device = device();
    let mha = MultiHeadAttentionConfig::new(16, 2)
        .with_dropout(0.0)
        .init(&device);
    let x = random([2, 5, 16], &device).require_grad();
    let run = || {
        let y = causal_self_attention(&mha, x.clone());
        let grads = y.clone().sum().backward();
        (values(y), values(mha.query.weight.grad(&grads).unwrap()))
    };
    let (y32, gq32) = run();
    let (y, gq) = with_compute_type(Some(ComputeType::BFloat16), run);
    assert!(all_in(ComputeType::BFloat16, &y));
    assert_near("attention", &y, &y32, 5e-2);
    assert_near("query weight grad", &gq, &gq32, 5e-2);
}

#[test]
fn other_backends_stay_in_f32() {
    let device = Device::flex().autodiff();
    let layer = LinearConfig::new(24, 5).init(&device);
    let x = random([4, 24], &device);
    let y = with_compute_type(Some(ComputeType::BFloat16), || linear(&layer, x.clone()));
    assert!(!all_in(ComputeType::BFloat16, &values(y.clone())));
    assert_eq!(values(y), values(layer.forward(x)));
}
