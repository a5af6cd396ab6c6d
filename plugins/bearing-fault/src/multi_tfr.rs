//! `MultiTFR_CNN`: one 2-D CNN branch per time-frequency representation of the signal (the
//! bearing seed's multi-TFR model): the STFT magnitude, the Morlet CWT and the pseudo
//! Wigner-Ville distribution ([`crate::tfr`]), each computed on the device, compressed by
//! `sign(v) log(1 + |v|)`, and classified by its own blocks of 3x3 conv, batch norm, ReLU and 2x2
//! max-pool, global average pooling and a linear layer. Each branch's scores are an output of
//! their own (`pred_stft`, `pred_cwt`, `pred_wvd`) and `pred` is their mean; `MultiTFR_trainer`
//! trains the branches on losses weighted by `tfr_weights`.

use serde::{Deserialize, Serialize};
use stoker::native::nn::{
    BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Linear, LinearConfig, MaxPool2d,
    MaxPool2dConfig, PaddingConfig2d, Relu,
};
use stoker::prelude::*;

use crate::tfr::columns;
use crate::tfr::cwt::MorletCwt;
use crate::tfr::stft::Stft;
use crate::tfr::wvd::PseudoWvd;

fn default_nperseg() -> usize {
    64
}
fn default_hop() -> usize {
    32
}
fn default_scales() -> Vec<f64> {
    (1..=16).map(f64::from).collect()
}
fn default_half_window() -> usize {
    31
}
fn default_bins() -> usize {
    64
}
fn default_channels() -> Vec<usize> {
    vec![8, 16, 32]
}
fn default_classes() -> usize {
    4
}

/// The STFT branch's transform: scipy's `stft` with a periodic Hann window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StftArgs {
    /// Samples per frame (even).
    #[serde(default = "default_nperseg")]
    pub nperseg: usize,
    /// Samples between frames.
    #[serde(default = "default_hop")]
    pub hop: usize,
}

/// The CWT branch's transform: pywt's `cwt` with the Morlet wavelet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CwtArgs {
    /// The scales (samples).
    #[serde(default = "default_scales")]
    pub scales: Vec<f64>,
    /// Coefficients kept: every hop-th sample.
    #[serde(default = "default_hop")]
    pub hop: usize,
}

/// The pseudo Wigner-Ville branch's transform: tftb's `tfrpwv` of the analytic signal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WvdArgs {
    /// The window covers lags -half_window ..= half_window (at most bins / 2 - 1).
    #[serde(default = "default_half_window")]
    pub half_window: usize,
    /// Frequency bins (bin k is k / (2 bins) cycles per sample).
    #[serde(default = "default_bins")]
    pub bins: usize,
    /// Evaluated at every hop-th sample.
    #[serde(default = "default_hop")]
    pub hop: usize,
}

/// The representations a model uses, each with its transform's arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Representations {
    /// The STFT magnitude.
    #[serde(default)]
    pub stft: Option<StftArgs>,
    /// The Morlet CWT.
    #[serde(default)]
    pub cwt: Option<CwtArgs>,
    /// The pseudo Wigner-Ville distribution.
    #[serde(default)]
    pub wvd: Option<WvdArgs>,
}

/// A classifier with one 2-D CNN branch per time-frequency representation of a signal [batch, length]: `representations: {stft: {nperseg: 64, hop: 32}, cwt: {scales: [1, ..., 16], hop: 32}, wvd: {half_window: 31, bins: 64, hop: 32}}` (any of them, computed on the device as scipy's stft, pywt's Morlet cwt and tftb's pseudo Wigner-Ville distribution of the analytic signal, then sign(v) log(1 + |v|)); each branch is blocks of 3x3 conv, batch norm, ReLU and 2x2 max-pool (channels), global average pooling and a linear layer; the branch scores are outputs `<output>_stft`, `<output>_cwt`, `<output>_wvd`, and `<output>` is their mean.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(model, name = "MultiTFR_CNN")]
pub struct MultiTfrCnnSpec {
    /// The representations, each with its transform's arguments (at least one).
    pub representations: Representations,
    /// Output channels of each convolution block of a branch.
    #[serde(default = "default_channels")]
    pub channels: Vec<usize>,
    /// Number of classes.
    #[serde(default = "default_classes")]
    pub n_classes: usize,
    /// The batch tensor the model reads.
    #[serde(default = "stoker::names::input")]
    pub input: String,
    /// The name of the combined scores; a branch's are `<output>_<representation>`.
    #[serde(default = "stoker::names::prediction")]
    pub output: String,
}

/// A transform of signals `[batch, n]` into images `[batch, rows, cols]`.
#[derive(Debug, Clone)]
enum Transform {
    Stft(Stft),
    Cwt(MorletCwt, usize),
    Wvd(PseudoWvd),
}

impl Transform {
    fn image(&self, x: Tensor<2>) -> Result<Tensor<3>> {
        Ok(match self {
            Transform::Stft(stft) => stft.magnitude(x),
            Transform::Cwt(cwt, hop) => {
                let coef = cwt.forward(x);
                let [b, s, n] = coef.dims();
                let kept: Vec<i64> = (0..n).step_by(*hop).map(|t| t as i64).collect();
                let cols = kept.len();
                columns(coef.reshape([b * s, n]), kept).reshape([b, s, cols])
            }
            Transform::Wvd(wvd) => wvd.forward(x)?,
        })
    }

    /// The image's `[rows, cols]` for signals of `n` samples.
    fn shape(&self, n: usize) -> [usize; 2] {
        match self {
            Transform::Stft(stft) => [stft.bins(), stft.frames(n).0],
            Transform::Cwt(cwt, hop) => [cwt.scales(), n.div_ceil(*hop)],
            Transform::Wvd(wvd) => [wvd.bins(), wvd.times()],
        }
    }
}

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
    transforms: Vec<(String, Transform)>,
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
    fn transforms(&self, n: usize) -> std::result::Result<Vec<(String, Transform)>, BuildError> {
        let r = &self.representations;
        let mut out = Vec::new();
        let at = |which: &str, e: String| BuildError::at(format!("representations.{which}"), e);
        if let Some(a) = &r.stft {
            let stft = Stft::new(a.nperseg, a.hop).map_err(|e| at("stft", e))?;
            out.push(("stft".to_string(), Transform::Stft(stft)));
        }
        if let Some(a) = &r.cwt {
            if a.hop == 0 {
                return Err(at("cwt", "hop must be at least 1".into()));
            }
            let cwt = MorletCwt::new(&a.scales).map_err(|e| at("cwt", e))?;
            out.push(("cwt".to_string(), Transform::Cwt(cwt, a.hop)));
        }
        if let Some(a) = &r.wvd {
            let wvd = PseudoWvd::new(n, a.half_window, a.bins, a.hop).map_err(|e| at("wvd", e))?;
            out.push(("wvd".to_string(), Transform::Wvd(wvd)));
        }
        if out.is_empty() {
            return Err(BuildError::at("representations", "names no representation")
                .hint("e.g. representations: {stft: {}, cwt: {}, wvd: {}}"));
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
        for (name, transform) in &transforms {
            let [rows, cols] = transform.shape(n);
            if rows >> blocks == 0 || cols >> blocks == 0 {
                return Err(BuildError::at(
                    format!("representations.{name}"),
                    format!("its {rows} x {cols} image does not survive {blocks} 2x2 poolings"),
                )
                .hint("use fewer channels blocks, a smaller hop, or more scales or bins"));
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

    fn build(
        representations: &str,
        n: usize,
    ) -> std::result::Result<Box<dyn DynModel>, BuildError> {
        let spec: MultiTfrCnnSpec = serde_yaml::from_str(&format!(
            "{{representations: {representations}, channels: [2, 4], n_classes: 3}}"
        ))
        .unwrap();
        spec.build(&BuildContext::with_float_tensors(
            &Device::flex(),
            &[("x", &[n])],
        ))
    }

    #[test]
    fn each_representation_has_its_scores_and_pred_is_their_mean() {
        let model = build("{stft: {}, cwt: {}, wvd: {}}", 256).unwrap();
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
        let (a, b, c, mean) = (
            scores("pred_stft"),
            scores("pred_cwt"),
            scores("pred_wvd"),
            scores("pred"),
        );
        assert_eq!(mean.len(), 6);
        for i in 0..6 {
            assert!((mean[i] - (a[i] + b[i] + c[i]) / 3.0).abs() < 1e-5);
        }
    }

    #[test]
    fn no_representation_or_an_image_pooled_away_is_refused() {
        let Err(e) = build("{}", 256) else {
            panic!("built")
        };
        assert_eq!(e.arg.as_deref(), Some("representations"));
        // 2 CWT scales do not survive two 2x2 poolings.
        let Err(e) = build("{cwt: {scales: [1, 2]}}", 256) else {
            panic!("built")
        };
        assert_eq!(e.arg.as_deref(), Some("representations.cwt"));
        let Err(e) = build("{wvd: {half_window: 40, bins: 64}}", 256) else {
            panic!("built")
        };
        assert_eq!(e.arg.as_deref(), Some("representations.wvd"));
    }
}
