//! Drop-in modules: Burn's layers whose `forward` runs this crate's LibTorch fast path, so that
//! model code reads like Burn code (`self.conv.forward(x)`).
//!
//! Each wraps the Burn module of the same name and is transparent to Burn: its parameters have
//! the same paths (`conv.weight`, not `conv.inner.weight`), the same initialization and the same
//! checkpoints as the Burn module's, so a model switches by changing a field's type. Build one
//! from Burn's config, as Burn does, then convert: `Conv1dConfig::new(1, 16, 3).init(device).into()`
//! (a layer norm takes its config, whose epsilon Burn's module keeps private:
//! `LayerNorm::new(&LayerNormConfig::new(64), device)`).
//!
//! | module | forward |
//! | --- | --- |
//! | [`Linear`] | [`linear`](crate::linear): one matrix product over all leading axes |
//! | [`Conv1d`], [`Conv2d`] | [`conv1d`](crate::conv1d), [`conv2d`](crate::conv2d): LibTorch's `convolution_backward` |
//! | [`BatchNorm`], [`LayerNorm`] | [`batch_norm`](crate::batch_norm), [`layer_norm`](crate::layer_norm): LibTorch islands |
//! | [`MaxPool1d`], [`MaxPool2d`] | [`max_pool1d`](crate::max_pool1d), [`max_pool2d`](crate::max_pool2d): strided maxima |
//! | [`CausalSelfAttention`] | [`causal_self_attention`](crate::causal_self_attention): `scaled_dot_product_attention` |
//! | [`Relu`] | [`relu`](crate::relu): LibTorch's `threshold_backward` |

use burn::module::{
    Content, Devices, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
};
use burn::nn::LayerNormConfig;
use burn::tensor::{Device, Tensor};

pub use burn::nn::attention::MultiHeadAttentionConfig;
pub use burn::nn::conv::{Conv1dConfig, Conv2dConfig};
pub use burn::nn::pool::{MaxPool1dConfig, MaxPool2dConfig};
pub use burn::nn::{BatchNormConfig, LinearConfig, PaddingConfig1d, PaddingConfig2d};

/// A wrapper that is its Burn module as far as Burn can tell: visiting, mapping, moving and
/// displaying it reach the wrapped module's fields directly.
macro_rules! transparent {
    ($(#[$doc:meta])* $name:ident($inner:ty) $({ $($extra:ident: $ty:ty),* })?) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            /// The Burn module.
            pub inner: $inner,
            $($(#[doc(hidden)] pub $extra: $ty,)*)?
        }

        impl Module for $name {
            fn collect_devices(&self, devices: Devices) -> Devices {
                self.inner.collect_devices(devices)
            }

            fn fork(self, device: &Device) -> Self {
                Self { inner: self.inner.fork(device), $($($extra: self.$extra,)*)? }
            }

            fn to_device(self, device: &Device) -> Self {
                Self { inner: self.inner.to_device(device), $($($extra: self.$extra,)*)? }
            }

            fn train(self) -> Self {
                Self { inner: self.inner.train(), $($($extra: self.$extra,)*)? }
            }

            fn valid(&self) -> Self {
                Self { inner: self.inner.valid(), $($($extra: self.$extra.clone(),)*)? }
            }

            fn materialize(self) -> Self {
                Self { inner: self.inner.materialize(), $($($extra: self.$extra,)*)? }
            }

            fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
                self.inner.visit(visitor)
            }

            fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
                Self { inner: self.inner.map(mapper), $($($extra: self.$extra,)*)? }
            }
        }

        impl ModuleDisplayDefault for $name {
            fn content(&self, content: Content) -> Option<Content> {
                self.inner.content(content)
            }

            fn num_params(&self) -> usize {
                Module::num_params(&self.inner)
            }
        }

        impl ModuleDisplay for $name {}

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                core::fmt::Display::fmt(&self.inner, f)
            }
        }
    };
}

/// Converts a Burn module into its drop-in.
macro_rules! from_burn {
    ($($name:ident),*) => {
        $(
            impl From<burn::nn::$name> for $name {
                fn from(inner: burn::nn::$name) -> Self {
                    $name { inner }
                }
            }
        )*
    };
}

transparent!(
    /// Burn's `Linear`, one matrix product over all leading axes.
    Linear(burn::nn::Linear)
);
transparent!(
    /// Burn's `Conv1d`, gradients by LibTorch's `convolution_backward`.
    Conv1d(burn::nn::conv::Conv1d)
);
transparent!(
    /// Burn's `Conv2d`, gradients by LibTorch's `convolution_backward`.
    Conv2d(burn::nn::conv::Conv2d)
);
transparent!(
    /// Burn's `BatchNorm`, forward and backward by LibTorch's `native_batch_norm`.
    BatchNorm(burn::nn::BatchNorm)
);
transparent!(
    /// Burn's `LayerNorm`, forward and backward by LibTorch's `layer_norm`.
    LayerNorm(burn::nn::LayerNorm) { epsilon: f64 }
);
transparent!(
    /// Burn's `MaxPool1d`, non-overlapping windows as a maximum of strided views.
    MaxPool1d(burn::nn::pool::MaxPool1d)
);
transparent!(
    /// Burn's `MaxPool2d`, non-overlapping windows as a maximum of strided views.
    MaxPool2d(burn::nn::pool::MaxPool2d)
);
transparent!(
    /// Burn's `MultiHeadAttention` as causal self-attention, by LibTorch's
    /// `scaled_dot_product_attention`.
    CausalSelfAttention(burn::nn::attention::MultiHeadAttention)
);
transparent!(
    /// Burn's `Relu`, the gradient by LibTorch's `threshold_backward`.
    Relu(burn::nn::Relu)
);

from_burn!(Linear, BatchNorm, Relu);

impl From<burn::nn::conv::Conv1d> for Conv1d {
    fn from(inner: burn::nn::conv::Conv1d) -> Self {
        Conv1d { inner }
    }
}

impl From<burn::nn::conv::Conv2d> for Conv2d {
    fn from(inner: burn::nn::conv::Conv2d) -> Self {
        Conv2d { inner }
    }
}

impl From<burn::nn::pool::MaxPool1d> for MaxPool1d {
    fn from(inner: burn::nn::pool::MaxPool1d) -> Self {
        MaxPool1d { inner }
    }
}

impl From<burn::nn::pool::MaxPool2d> for MaxPool2d {
    fn from(inner: burn::nn::pool::MaxPool2d) -> Self {
        MaxPool2d { inner }
    }
}

impl From<burn::nn::attention::MultiHeadAttention> for CausalSelfAttention {
    fn from(inner: burn::nn::attention::MultiHeadAttention) -> Self {
        CausalSelfAttention { inner }
    }
}

impl Linear {
    /// `x W + b` over the last axis, whatever the leading ones.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        crate::linear(&self.inner, x)
    }
}

impl Conv1d {
    /// The convolution of `[batch, channels, length]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        crate::conv1d(&self.inner, x)
    }
}

impl Conv2d {
    /// The convolution of `[batch, channels, height, width]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        crate::conv2d(&self.inner, x)
    }
}

impl BatchNorm {
    /// Batch normalization over the channel axis (1), with running statistics in training.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        crate::batch_norm(&self.inner, x)
    }
}

impl LayerNorm {
    /// The layer norm of `config` (Burn's `LayerNormConfig::init`), keeping its epsilon.
    pub fn new(config: &LayerNormConfig, device: &Device) -> Self {
        LayerNorm {
            inner: config.init(device),
            epsilon: config.epsilon,
        }
    }

    /// Layer normalization over the last axis.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        crate::layer_norm(&self.inner, x, self.epsilon)
    }
}

impl MaxPool1d {
    /// The maximum over each window of `[batch, channels, length]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        crate::max_pool1d(&self.inner, x)
    }
}

impl MaxPool2d {
    /// The maximum over each window of `[batch, channels, height, width]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        crate::max_pool2d(&self.inner, x)
    }
}

impl CausalSelfAttention {
    /// Self-attention of `[batch, time, features]` where each step sees itself and the steps
    /// before it.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        crate::causal_self_attention(&self.inner, x)
    }
}

impl Relu {
    /// max(x, 0).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        crate::relu(x)
    }
}

impl Default for Relu {
    fn default() -> Self {
        Relu {
            inner: burn::nn::Relu,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::LayerNormConfig;
    use burn::tensor::Distribution;

    #[derive(Module, Debug)]
    struct BurnNet {
        conv: burn::nn::conv::Conv1d,
        norm: burn::nn::BatchNorm,
        pool: burn::nn::pool::MaxPool1d,
        head: burn::nn::Linear,
        out_norm: burn::nn::LayerNorm,
    }

    #[derive(Module, Debug)]
    struct NativeNet {
        conv: Conv1d,
        norm: BatchNorm,
        relu: Relu,
        pool: MaxPool1d,
        head: Linear,
        out_norm: LayerNorm,
    }

    /// Every float parameter's path.
    #[derive(Default)]
    struct Paths {
        at: Vec<String>,
        found: Vec<String>,
    }

    impl ModuleVisitor for Paths {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.at.push(name.to_string());
        }

        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.at.pop();
        }

        fn visit_float<const D: usize>(&mut self, _param: &Param<Tensor<D>>) {
            self.found.push(self.at.join("."));
        }
    }

    fn paths(module: &impl Module) -> Vec<String> {
        let mut visitor = Paths::default();
        module.visit(&mut visitor);
        visitor.found
    }

    #[test]
    #[allow(deprecated)] // Device::libtorch: burn-tch is deprecated upstream but is stoker's backend
    fn drop_ins_are_burns_modules_with_the_fast_forward() {
        let device = Device::libtorch().autodiff();
        let burn = BurnNet {
            conv: Conv1dConfig::new(2, 4, 3)
                .with_padding(PaddingConfig1d::Explicit(1, 1))
                .init(&device),
            norm: BatchNormConfig::new(4).init(&device),
            pool: MaxPool1dConfig::new(2).init(),
            head: LinearConfig::new(4, 3).init(&device),
            out_norm: LayerNormConfig::new(3).init(&device),
        };
        let native = NativeNet {
            conv: burn.conv.clone().into(),
            norm: burn.norm.clone().into(),
            relu: Relu::default(),
            pool: burn.pool.clone().into(),
            head: burn.head.clone().into(),
            out_norm: LayerNorm::new(&LayerNormConfig::new(3), &device),
        };
        // Same parameters under the same paths: checkpoints and optimizer states carry over.
        assert_eq!(paths(&native), paths(&burn));
        assert!(paths(&burn).contains(&"conv.weight".to_string()));
        assert_eq!(Module::num_params(&native), Module::num_params(&burn));

        let x = Tensor::<3>::random([5, 2, 8], Distribution::Normal(0.0, 1.0), &device);
        let reference = {
            let h = burn::tensor::activation::relu(burn.norm.forward(burn.conv.forward(x.clone())));
            let h = burn.pool.forward(h).swap_dims(1, 2);
            burn.out_norm.forward(burn.head.forward(h))
        };
        let ours = {
            let h = native
                .relu
                .forward(native.norm.forward(native.conv.forward(x)));
            let h = native.pool.forward(h).swap_dims(1, 2);
            native.out_norm.forward(native.head.forward(h))
        };
        let (a, b) = (
            reference.into_data().try_to_vec::<f32>().unwrap(),
            ours.into_data().try_to_vec::<f32>().unwrap(),
        );
        assert_eq!(a.len(), b.len());
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-5, "{p} vs {q}");
        }
        // An evaluation copy stays a drop-in (same paths, no autodiff).
        assert_eq!(paths(&native.valid()), paths(&burn));
    }
}
