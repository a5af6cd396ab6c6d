//! `MultiTFR_CNN`: one 2-D CNN branch per time-frequency representation of the signal (the
//! bearing seed's multi-TFR model). The representations are registered transforms (`stft`,
//! `morlet_cwt`, `pseudo_wvd` of [`crate::tfr`], or a plugin's), each computed on the device,
//! compressed by `sign(v) log(1 + |v|)`, and classified by its own blocks of 3x3 conv, batch
//! norm, ReLU and 2x2 max-pool, global average pooling and a linear layer. Each branch's scores
//! are an output of their own (`pred_stft`, `pred_morlet_cwt`, `pred_pseudo_wvd`) and `pred` is
//! their mean; `MultiTFR_trainer` trains the branches on losses weighted by `tfr_weights`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stoker::native::nn::{
    BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Linear, LinearConfig, MaxPool2d,
    MaxPool2dConfig, PaddingConfig2d, Relu,
};
use stoker::prelude::*;
use stoker::registry::Named;

fn default_channels() -> Vec<usize> {
    vec![8, 16, 32]
}
fn default_classes() -> usize {
    4
}

/// A classifier with one 2-D CNN branch per time-frequency representation of a signal [batch, length]: `transforms: [{name: stft, args: {nperseg: 64, hop: 32}}, {name: morlet_cwt}, {name: pseudo_wvd}]` (registered transforms, cargo xtask list transform; each computed on the device, then sign(v) log(1 + |v|)); each branch is blocks of 3x3 conv, batch norm, ReLU and 2x2 max-pool (channels), global average pooling and a linear layer; the branch scores are outputs `<output>_<transform>`, and `<output>` is their mean.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(model, name = "MultiTFR_CNN")]
pub struct MultiTfrCnnSpec {
    /// The representations: registered transforms, each `{name, args}` (at least one, each name once).
    pub transforms: Vec<Named>,
    /// Output channels of each convolution block of a branch.
    #[serde(default = "default_channels")]
    pub channels: Vec<usize>,
    /// Number of classes.
    #[serde(default = "default_classes")]
    pub n_classes: usize,
    /// The batch tensor the model reads.
    #[serde(default = "stoker::names::input")]
    pub input: String,
    /// The name of the combined scores; a branch's are `<output>_<transform>`.
    #[serde(default = "stoker::names::prediction")]
    pub output: String,
}

/// The transforms of a model, by name, in branch order.
type Transforms = Vec<(String, Arc<dyn SignalTransform>)>;

/// One convolution block.
#[derive(Module, Debug)]
pub struct Block {
    conv: Conv2d,
    norm: BatchNorm,
    relu: Relu,
    pool: MaxPool2d,
}

/// One representation's classifier.
#[derive(Module, Debug)]
pub struct Branch {
    blocks: Vec<Block>,
    classifier: Linear,
}

impl Branch {
    fn new(channels: &[usize], classes: usize, device: &Device) -> Branch {
        let mut previous = 1;
        let blocks = channels
            .iter()
            .map(|&c| {
                let block = Block {
                    conv: Conv2dConfig::new([previous, c], [3, 3])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(device)
                        .into(),
                    norm: BatchNormConfig::new(c).init(device).into(),
                    relu: Relu::default(),
                    pool: MaxPool2dConfig::new([2, 2]).init().into(),
                };
                previous = c;
                block
            })
            .collect();
        Branch {
            blocks,
            classifier: LinearConfig::new(previous, classes).init(device).into(),
        }
    }

    /// Class scores `[batch, classes]` of images `[batch, rows, cols]`.
    fn classify(&self, image: Tensor<3>) -> Tensor<2> {
        let [b, h, w] = image.dims();
        // sign(v) log(1 + |v|): magnitudes and signed distributions alike, compressed.
        let compressed = image.clone().sign() * image.abs().log1p();
        let mut x = compressed.reshape([b, 1, h, w]);
        for block in &self.blocks {
            let x1 = block.norm.forward(block.conv.forward(x));
            x = block.pool.forward(block.relu.forward(x1));
        }
        let [b, c, h, w] = x.dims();
        let pooled = x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]);
        self.classifier.forward(pooled)
    }
}

/// The model.
#[derive(Module, Debug)]
pub struct MultiTfrCnn {
    branches: Vec<Branch>,
    #[module(skip)]
    transforms: Transforms,
    #[module(skip)]
    input: String,
    #[module(skip)]
    output: String,
}

impl Model for MultiTfrCnn {
    fn forward(&self, batch: &Batch) -> Result<Output> {
        let x = batch.float::<2>(&self.input)?;
        let mut output = Output::output();
        let mut sum: Option<Tensor<2>> = None;
        for ((name, transform), branch) in self.transforms.iter().zip(&self.branches) {
            let scores = branch.classify(transform.image(x.clone())?);
            sum = Some(match sum {
                Some(s) => s + scores.clone(),
                None => scores.clone(),
            });
            output = output.with_float(format!("{}_{name}", self.output), scores);
        }
        let mean = sum
            .expect("at least one representation")
            .div_scalar(self.branches.len() as f64);
        Ok(output.with_float(self.output.clone(), mean))
    }
}

impl MultiTfrCnnSpec {
    /// The transforms for signals of `n` samples, by name.
    fn transforms(&self, n: usize) -> std::result::Result<Transforms, BuildError> {
        if self.transforms.is_empty() {
            return Err(BuildError::at("transforms", "names no transform")
                .hint("e.g. transforms: [{name: stft}, {name: morlet_cwt}, {name: pseudo_wvd}]"));
        }
        let mut out: Transforms = Vec::new();
        for (i, named) in self.transforms.iter().enumerate() {
            let at = format!("transforms[{i}]");
            if out.iter().any(|(name, _)| *name == named.name) {
                return Err(BuildError::at(
                    &at,
                    format!(
                        "`{}` is named twice; each representation is one branch",
                        named.name
                    ),
                ));
            }
            let spec = named.parse::<dyn TransformSpec>(&at)?;
            let transform = spec.build(n).map_err(|mut e| {
                e.arg = Some(match e.arg.take() {
                    Some(arg) => format!("{at}.args.{arg}"),
                    None => at.clone(),
                });
                e
            })?;
            out.push((named.name.clone(), transform));
        }
        Ok(out)
    }
}

impl ModelSpec for MultiTfrCnnSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn DynModel>, BuildError> {
        if self.channels.is_empty() || self.channels.contains(&0) || self.n_classes < 2 {
            return Err(BuildError::new(
                "channels needs at least one block of at least 1 channel, n_classes at least 2",
            ));
        }
        let info = ctx.data()?.require("input", &self.input)?;
        let [n] = info.sample_shape[..] else {
            return Err(BuildError::at(
                "input",
                format!(
                    "each sample of `{}` has shape {:?}; MultiTFR_CNN needs signals [length]",
                    self.input, info.sample_shape
                ),
            ));
        };
        let transforms = self.transforms(n)?;
        let blocks = self.channels.len() as u32;
        for (i, (_, transform)) in transforms.iter().enumerate() {
            let [rows, cols] = transform.shape();
            if rows >> blocks == 0 || cols >> blocks == 0 {
                return Err(BuildError::at(
                    format!("transforms[{i}]"),
                    format!("its {rows} x {cols} image does not survive {blocks} 2x2 poolings"),
                )
                .hint("use fewer channel blocks, a smaller hop, or more scales or bins"));
            }
        }
        let device = ctx.train_device();
        Ok(boxed(MultiTfrCnn {
            branches: transforms
                .iter()
                .map(|_| Branch::new(&self.channels, self.n_classes, &device))
                .collect(),
            transforms,
            input: self.input.clone(),
            output: self.output.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stoker::burn::tensor::Distribution;

    fn build(transforms: &str, n: usize) -> std::result::Result<Box<dyn DynModel>, BuildError> {
        let spec: MultiTfrCnnSpec = serde_yaml::from_str(&format!(
            "{{transforms: {transforms}, channels: [2, 4], n_classes: 3}}"
        ))
        .unwrap();
        spec.build(&BuildContext::with_float_tensors(
            &Device::flex(),
            &[("x", &[n])],
        ))
    }

    #[test]
    fn each_representation_has_its_scores_and_pred_is_their_mean() {
        let model = build(
            "[{name: stft}, {name: morlet_cwt}, {name: pseudo_wvd}]",
            256,
        )
        .unwrap();
        let device = Device::flex();
        let x = Tensor::<2>::random([2, 256], Distribution::Normal(0.0, 1.0), &device);
        let output = model.forward(&Batch::batch().with_float("x", x)).unwrap();
        let scores = |name: &str| -> Vec<f32> {
            output
                .float::<2>(name)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let (a, b, c) = (
            scores("pred_stft"),
            scores("pred_morlet_cwt"),
            scores("pred_pseudo_wvd"),
        );
        let mean = scores("pred");
        assert_eq!(mean.len(), 6);
        for i in 0..6 {
            assert!((mean[i] - (a[i] + b[i] + c[i]) / 3.0).abs() < 1e-5);
        }
    }

    #[test]
    fn bad_transforms_are_refused_where_they_are_written() {
        let arg = |transforms: &str| -> String {
            match build(transforms, 256) {
                Err(e) => e.arg.unwrap_or_default(),
                Ok(_) => panic!("{transforms} built"),
            }
        };
        assert_eq!(arg("[]"), "transforms");
        assert_eq!(arg("[{name: stft}, {name: stft}]"), "transforms[1]");
        // 2 scales do not survive two 2x2 poolings.
        assert_eq!(
            arg("[{name: morlet_cwt, args: {scales: [1, 2]}}]"),
            "transforms[0]"
        );
        assert_eq!(
            arg("[{name: pseudo_wvd, args: {half_window: 40, bins: 64}}]"),
            "transforms[0].args.half_window"
        );
        assert_eq!(
            arg("[{name: stft, args: {nperseg: 63}}]"),
            "transforms[0].args.nperseg"
        );
    }
}
