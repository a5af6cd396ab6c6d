//! `CNN1d`: a 1-D convolutional classifier on raw signals. Each block is convolution, batch
//! norm, ReLU and max-pooling by 2; a global average pool and a linear layer give the class
//! scores. The defaults follow WDCNN (Zhang et al., 2017): a wide, strided first kernel that
//! acts as a learned filter bank, then small kernels.

use serde::{Deserialize, Serialize};
use stoker::burn::nn::{Dropout, DropoutConfig};
use stoker::native::nn::{
    BatchNorm, BatchNormConfig, Conv1d, Conv1dConfig, Linear, LinearConfig, MaxPool1d,
    MaxPool1dConfig, PaddingConfig1d, Relu,
};
use stoker::prelude::*;

fn default_channels() -> Vec<usize> {
    vec![16, 32, 64, 64]
}
fn default_kernels() -> Vec<usize> {
    vec![64, 3, 3, 3]
}
fn default_strides() -> Vec<usize> {
    vec![8, 1, 1, 1]
}
fn default_classes() -> usize {
    4
}
/// A 1-D CNN classifier on signals [batch, length] or [batch, channels, length]: blocks of conv (kernels, strides), batch norm, ReLU and max-pool by 2, then global average pooling, dropout and a linear layer to n_classes scores (n_classes 1: a regression). With `windows: W`, each signal is cut into W consecutive windows scored on their own: `window_pred` [batch, W, n_classes] and `pred` their mean (for temporal_smoothness).
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(model, name = "CNN1d")]
pub struct Cnn1dSpec {
    /// Output channels of each convolution block.
    #[serde(default = "default_channels")]
    pub channels: Vec<usize>,
    /// Kernel size of each block's convolution.
    #[serde(default = "default_kernels")]
    pub kernels: Vec<usize>,
    /// Stride of each block's convolution.
    #[serde(default = "default_strides")]
    pub strides: Vec<usize>,
    /// Number of classes (the output's width).
    #[serde(default = "default_classes")]
    pub n_classes: usize,
    /// Dropout before the classifier.
    #[serde(default)]
    pub dropout: f64,
    /// The batch tensor the model reads.
    #[serde(default = "stoker::names::input")]
    pub input: String,
    /// The name of the output tensor (class scores).
    #[serde(default = "stoker::names::prediction")]
    pub output: String,
    /// Consecutive windows each signal is cut into (1: the whole signal). With 2 or more, the
    /// network scores each window on its own, `window_output` holds the scores per window
    /// [batch, windows, classes] and `output` their mean.
    #[serde(default = "one")]
    pub windows: usize,
    /// The name of the scores per window (with `windows` of 2 or more).
    #[serde(default = "default_window_output")]
    pub window_output: String,
}

fn one() -> usize {
    1
}
fn default_window_output() -> String {
    "window_pred".into()
}

/// One convolution block.
#[derive(Module, Debug)]
pub struct Block {
    conv: Conv1d,
    norm: BatchNorm,
    relu: Relu,
    pool: MaxPool1d,
}

/// The classifier.
#[derive(Module, Debug)]
pub struct Cnn1d {
    blocks: Vec<Block>,
    dropout: Dropout,
    classifier: Linear,
    #[module(skip)]
    input: String,
    #[module(skip)]
    output: String,
    #[module(skip)]
    windows: usize,
    #[module(skip)]
    window_output: String,
}

impl Model for Cnn1d {
    fn forward(&self, batch: &Batch) -> Result<Output> {
        let mut x: Tensor<3> = match batch.shape(&self.input)?.len() {
            2 => batch.float::<2>(&self.input)?.unsqueeze_dim(1),
            3 => batch.float::<3>(&self.input)?,
            rank => {
                return Err(StokerError::msg(format!(
                    "CNN1d: `{}` has rank {rank}; it needs [batch, length] or [batch, channels, length]",
                    self.input
                )));
            }
        };
        let [b, channels, length] = x.dims();
        let w = self.windows;
        if w > 1 {
            if !length.is_multiple_of(w) {
                return Err(StokerError::msg(format!(
                    "CNN1d: signals of {length} samples do not cut into {w} windows"
                )));
            }
            // [b, c, w, l / w] -> [b * w, c, l / w]: each window a signal of its own.
            x = x
                .reshape([b, channels, w, length / w])
                .swap_dims(1, 2)
                .reshape([b * w, channels, length / w]);
        }
        for block in &self.blocks {
            let x1 = block.norm.forward(block.conv.forward(x));
            x = block.pool.forward(block.relu.forward(x1));
        }
        let [n, c, l] = x.dims();
        let pooled = x.sum_dim(2).div_scalar(l as f64).reshape([n, c]);
        let scores = self.classifier.forward(self.dropout.forward(pooled));
        if w == 1 {
            return Ok(Output::output().with_float(self.output.clone(), scores));
        }
        let k = scores.dims()[1];
        let per_window = scores.reshape([b, w, k]);
        let mean = per_window.clone().mean_dim(1).reshape([b, k]);
        Ok(Output::output()
            .with_float(self.output.clone(), mean)
            .with_float(self.window_output.clone(), per_window))
    }
}

/// The length after a convolution with symmetric padding `k / 2`, then pooling by 2.
fn block_length(length: usize, kernel: usize, stride: usize) -> usize {
    let padded = length + 2 * (kernel / 2);
    let conv = if padded >= kernel {
        (padded - kernel) / stride + 1
    } else {
        0
    };
    conv / 2
}

impl ModelSpec for Cnn1dSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn DynModel>, BuildError> {
        let blocks = self.channels.len();
        if blocks == 0 {
            return Err(BuildError::at("channels", "needs at least one block"));
        }
        for (name, list) in [("kernels", &self.kernels), ("strides", &self.strides)] {
            if list.len() != blocks {
                return Err(BuildError::at(
                    name,
                    format!("has {} entries for {blocks} blocks (channels)", list.len()),
                ));
            }
            if list.contains(&0) {
                return Err(BuildError::at(name, "every entry must be at least 1"));
            }
        }
        if self.channels.contains(&0) || self.n_classes == 0 {
            return Err(BuildError::new("channels and n_classes must be at least 1"));
        }
        if self.windows == 0 {
            return Err(BuildError::at("windows", "must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(BuildError::at("dropout", "must be a probability in [0, 1)"));
        }
        let data = ctx.data()?;
        let info = data.require("input", &self.input)?;
        let (in_channels, length) = match info.sample_shape[..] {
            [l] => (1, l),
            [c, l] => (c, l),
            _ => {
                return Err(BuildError::at(
                    "input",
                    format!(
                        "each sample of `{}` has shape {:?}; CNN1d needs [length] or [channels, length]",
                        self.input, info.sample_shape
                    ),
                ));
            }
        };
        if !length.is_multiple_of(self.windows) {
            return Err(BuildError::at(
                "windows",
                format!(
                    "signals of {length} samples do not cut into {} windows",
                    self.windows
                ),
            ));
        }
        let mut l = length / self.windows;
        for (i, (&k, &s)) in self.kernels.iter().zip(&self.strides).enumerate() {
            l = block_length(l, k, s);
            if l == 0 {
                return Err(BuildError::at(
                    format!("kernels[{i}]"),
                    format!(
                        "signals of {} samples are pooled away by block {i}",
                        length / self.windows
                    ),
                )
                .hint("use fewer blocks, smaller strides or longer signals"));
            }
        }
        let device = ctx.train_device();
        let mut previous = in_channels;
        let blocks = self
            .channels
            .iter()
            .zip(self.kernels.iter().zip(&self.strides))
            .map(|(&c, (&k, &s))| {
                let block = Block {
                    conv: Conv1dConfig::new(previous, c, k)
                        .with_stride(s)
                        .with_padding(PaddingConfig1d::Explicit(k / 2, k / 2))
                        .init(&device)
                        .into(),
                    norm: BatchNormConfig::new(c).init(&device).into(),
                    relu: Relu::default(),
                    pool: MaxPool1dConfig::new(2).init().into(),
                };
                previous = c;
                block
            })
            .collect();
        Ok(boxed(Cnn1d {
            blocks,
            dropout: DropoutConfig::new(self.dropout).init(),
            classifier: LinearConfig::new(previous, self.n_classes)
                .init(&device)
                .into(),
            input: self.input.clone(),
            output: self.output.clone(),
            windows: self.windows,
            window_output: self.window_output.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_follow_the_convolution_arithmetic() {
        // 2048 samples, kernel 64 stride 8 padding 32: (2048 + 64 - 64) / 8 + 1 = 257, pooled 128.
        assert_eq!(block_length(2048, 64, 8), 128);
        // kernel 3 stride 1 padding 1 keeps the length, pooling halves it.
        assert_eq!(block_length(128, 3, 1), 64);
        assert_eq!(block_length(1, 3, 1), 0);
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    fn build(length: usize, windows: usize, device: &Device) -> Box<dyn DynModel> {
        let spec: Cnn1dSpec = serde_yaml::from_str(&format!(
            "{{channels: [4, 6], kernels: [5, 3], strides: [2, 1], n_classes: 3, windows: {windows}}}"
        ))
        .unwrap();
        let ctx = BuildContext::with_float_tensors(device, &[("x", &[length])]);
        // The same seed gives both models the same weights (their shapes do not depend on the
        // signal's length).
        device.seed(11);
        spec.build(&ctx).unwrap()
    }

    fn signal(values: Vec<f32>, shape: [usize; 2], device: &Device) -> Batch {
        Batch::batch().with_float(
            "x",
            Tensor::<2>::from_data(TensorData::new(values, shape), device),
        )
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn windows_are_scored_on_their_own_and_averaged() {
        let device = Device::flex();
        let a: Vec<f32> = (0..32).map(|t| (t as f32 * 0.3).sin()).collect();
        let b: Vec<f32> = (0..32).map(|t| (t as f32 * 1.1).cos() * 0.5).collect();
        // The whole model on the two halves as two signals of 32 ...
        let halves = build(32, 1, &device)
            .forward(&signal([a.clone(), b.clone()].concat(), [2, 32], &device))
            .unwrap();
        let halves = values(halves.float::<2>("pred").unwrap());
        // ... scores each window of the 64-sample signal [a | b] exactly so (batch norm sees
        // the same two windows), and `pred` is their mean.
        let windowed = build(64, 2, &device)
            .forward(&signal([a, b].concat(), [1, 64], &device))
            .unwrap();
        let per_window = values(windowed.float::<3>("window_pred").unwrap());
        for (got, want) in per_window.iter().zip(&halves) {
            assert!((got - want).abs() < 1e-5, "{per_window:?} vs {halves:?}");
        }
        let mean = values(windowed.float::<2>("pred").unwrap());
        for k in 0..3 {
            let want = (halves[k] + halves[3 + k]) / 2.0;
            assert!((mean[k] - want).abs() < 1e-5, "{mean:?}");
        }
    }

    #[test]
    fn signals_that_do_not_cut_into_the_windows_are_refused() {
        let spec: Cnn1dSpec = serde_yaml::from_str("{windows: 3}").unwrap();
        let ctx = BuildContext::with_float_tensors(&Device::flex(), &[("x", &[2048])]);
        let Err(e) = spec.build(&ctx) else {
            panic!("built")
        };
        assert_eq!(e.arg.as_deref(), Some("windows"));
    }
}
