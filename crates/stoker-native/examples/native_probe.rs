//! Times each `stoker::native` layer against the Burn module it replaces, forward and backward,
//! on LibTorch's CPU: the layer-level numbers in docs/performance.md.
//!
//! ```sh
//! OMP_NUM_THREADS=2 cargo run --example native_probe -p stoker-native
//! ```
//!
//! Each line is the mean over 200 runs of one layer on the bench workloads' shapes: forward
//! (with its output summed and read, which synchronizes) and backward of that sum. Both columns
//! include the same sum and read, so compare lines with each other, not with whole steps.

#![allow(deprecated)] // Device::libtorch: burn-tch is deprecated upstream but is stoker's backend

use std::time::Instant;

use burn::nn::attention::{MhaInput, MultiHeadAttentionConfig, generate_autoregressive_mask};
use burn::nn::conv::Conv1dConfig;
use burn::nn::pool::MaxPool1dConfig;
use burn::nn::{BatchNormConfig, LayerNormConfig, PaddingConfig1d};
use burn::tensor::{Device, Distribution, Tensor, activation};
use stoker_native as native;

const RUNS: u32 = 200;

fn time(label: &str, f: &dyn Fn() -> Tensor<3>) {
    for _ in 0..5 {
        drop(f().sum().backward());
    }
    let (mut forward, mut backward) = (0.0, 0.0);
    for _ in 0..RUNS {
        let start = Instant::now();
        let sum = f().sum();
        let _ = sum.clone().into_scalar::<f32>();
        forward += start.elapsed().as_secs_f64();
        let start = Instant::now();
        drop(sum.backward());
        backward += start.elapsed().as_secs_f64();
    }
    let us = |seconds: f64| seconds / f64::from(RUNS) * 1e6;
    println!(
        "{label:<34} forward {:>6.0} µs   backward {:>6.0} µs",
        us(forward),
        us(backward)
    );
}

fn main() {
    let device = Device::libtorch().autodiff();
    let random =
        |shape: [usize; 3]| Tensor::<3>::random(shape, Distribution::Normal(0.0, 1.0), &device);

    // cnn1d's blocks: conv, batch norm, ReLU.
    for (c_in, c_out, kernel, stride, length) in [(1, 16, 64, 8, 2048), (16, 32, 3, 1, 128)] {
        let conv = Conv1dConfig::new(c_in, c_out, kernel)
            .with_stride(stride)
            .with_padding(PaddingConfig1d::Explicit(kernel / 2, kernel / 2))
            .init(&device);
        let norm = BatchNormConfig::new(c_out).init(&device);
        let h = conv
            .forward(random([32, c_in, length]))
            .detach()
            .require_grad();
        time(&format!("batch norm {c_out}, native"), &|| {
            native::batch_norm(&norm, h.clone())
        });
        time(&format!("batch norm {c_out}, Burn"), &|| {
            norm.forward(h.clone())
        });
        time(&format!("relu [32, {c_out}, ..], native"), &|| {
            native::relu(h.clone())
        });
        time(&format!("relu [32, {c_out}, ..], Burn"), &|| {
            activation::relu(h.clone())
        });
    }

    // cnn1d's four convolutions; the first one's input is data (no gradient).
    for (c_in, c_out, kernel, stride, length) in [
        (1, 16, 64, 8, 2048),
        (16, 32, 3, 1, 128),
        (32, 64, 3, 1, 64),
        (64, 64, 3, 1, 32),
    ] {
        let conv = Conv1dConfig::new(c_in, c_out, kernel)
            .with_stride(stride)
            .with_padding(PaddingConfig1d::Explicit(kernel / 2, kernel / 2))
            .init(&device);
        let x = random([32, c_in, length]);
        let x = if c_in > 1 { x.require_grad() } else { x };
        let label = format!("conv {c_in} to {c_out}, kernel {kernel}");
        time(&format!("{label}, native"), &|| {
            native::conv1d(&conv, x.clone())
        });
        time(&format!("{label}, Burn"), &|| conv.forward(x.clone()));
    }

    // cnn1d's max pooling by 2.
    let pool = MaxPool1dConfig::new(2).init();
    for (channels, length) in [(16, 257), (32, 128), (64, 64), (64, 32)] {
        let x = random([32, channels, length]).require_grad();
        let label = format!("max pool [32, {channels}, {length}]");
        time(&format!("{label}, native"), &|| {
            native::max_pool1d(&pool, x.clone())
        });
        time(&format!("{label}, Burn"), &|| pool.forward(x.clone()));
    }

    // decoder's blocks: layer norm and causal self-attention over [32, 16, 64].
    let x = random([32, 16, 64]).require_grad();
    let norm = LayerNormConfig::new(64).init(&device);
    let mha = MultiHeadAttentionConfig::new(64, 4)
        .with_dropout(0.0)
        .init(&device);
    let projection = burn::nn::LinearConfig::new(64, 64).init(&device);
    time("linear 64 on [32, 16, 64], native", &|| {
        native::linear(&projection, x.clone())
    });
    time("linear 64 on [32, 16, 64], Burn", &|| {
        projection.forward(x.clone())
    });
    time("layer norm 64, native", &|| {
        native::layer_norm(&norm, x.clone(), 1e-5)
    });
    time("layer norm 64, Burn", &|| norm.forward(x.clone()));
    time("causal attention, native", &|| {
        native::causal_self_attention(&mha, x.clone())
    });
    time("causal attention, Burn", &|| {
        let mask = generate_autoregressive_mask(32, 16, &x.device());
        mha.forward(MhaInput::self_attn(x.clone()).mask_attn(mask))
            .context
    });
}
