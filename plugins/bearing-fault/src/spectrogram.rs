//! `SpectrogramCNN`: a 2-D CNN on the log-magnitude STFT of raw signals, with SpecAugment
//! (random frequency and time masks) in training only.

use serde::{Deserialize, Serialize};
use stoker::burn::nn::{Dropout, DropoutConfig};
use stoker::burn::signal::{StftOptions, hann_window, stft};
use stoker::burn::tensor::Distribution;
use stoker::native::nn::{
    BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Linear, LinearConfig, MaxPool2d,
    MaxPool2dConfig, PaddingConfig2d, Relu,
};
use stoker::prelude::*;

fn default_n_fft() -> usize {
    256
}
fn default_hop() -> usize {
    64
}
fn default_channels() -> Vec<usize> {
    vec![16, 32, 64]
}
fn default_classes() -> usize {
    4
}
fn default_mask_width() -> usize {
    12
}
fn default_masks() -> usize {
    2
}
/// A 2-D CNN classifier on spectrograms computed inside the model: log(1 + |STFT|) of a signal [batch, length] (Hann window, n_fft a power of two, hop), then blocks of 3x3 conv, batch norm, ReLU and 2x2 max-pool, global average pooling and a linear layer. In training (not in evaluation) SpecAugment masks freq_masks bands of up to freq_mask_width bins and time_masks spans of up to time_mask_width frames of each spectrogram.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(model, name = "SpectrogramCNN")]
pub struct SpectrogramCnnSpec {
    /// FFT size of each frame (a power of two).
    #[serde(default = "default_n_fft")]
    pub n_fft: usize,
    /// Samples between frames.
    #[serde(default = "default_hop")]
    pub hop: usize,
    /// Output channels of each convolution block.
    #[serde(default = "default_channels")]
    pub channels: Vec<usize>,
    /// Number of classes.
    #[serde(default = "default_classes")]
    pub n_classes: usize,
    /// Dropout before the classifier.
    #[serde(default)]
    pub dropout: f64,
    /// SpecAugment: frequency masks per spectrogram (0 for none).
    #[serde(default = "default_masks")]
    pub freq_masks: usize,
    /// SpecAugment: the widest frequency mask, in bins.
    #[serde(default = "default_mask_width")]
    pub freq_mask_width: usize,
    /// SpecAugment: time masks per spectrogram (0 for none).
    #[serde(default = "default_masks")]
    pub time_masks: usize,
    /// SpecAugment: the widest time mask, in frames.
    #[serde(default = "default_mask_width")]
    pub time_mask_width: usize,
    /// The batch tensor the model reads.
    #[serde(default = "stoker::names::input")]
    pub input: String,
    /// The name of the output tensor (class scores).
    #[serde(default = "stoker::names::prediction")]
    pub output: String,
}

/// One convolution block.
#[derive(Module, Debug)]
pub struct Block2d {
    conv: Conv2d,
    norm: BatchNorm,
    relu: Relu,
    pool: MaxPool2d,
}

/// The classifier.
#[derive(Module, Debug)]
pub struct SpectrogramCnn {
    blocks: Vec<Block2d>,
    dropout: Dropout,
    classifier: Linear,
    #[module(skip)]
    settings: Settings,
}

/// What the module needs of its spec.
#[derive(Debug, Clone)]
struct Settings {
    n_fft: usize,
    hop: usize,
    masks: [(usize, usize); 2],
    input: String,
    output: String,
}

impl SpectrogramCnn {
    /// log(1 + |STFT|) as `[batch, 1, freqs, frames]`.
    pub fn spectrogram(&self, x: Tensor<2>) -> Tensor<4> {
        let device = x.device();
        let mut options = StftOptions::new(self.settings.n_fft);
        options.hop_length = self.settings.hop;
        let window = hann_window(self.settings.n_fft, true, &device);
        let s = stft(x, Some(window), options);
        let [b, frames, freqs, _] = s.dims();
        let re = s.clone().narrow(3, 0, 1);
        let im = s.narrow(3, 1, 1);
        let magnitude = (re.square() + im.square()).sqrt();
        magnitude
            .add_scalar(1.0)
            .log()
            .reshape([b, frames, freqs])
            .swap_dims(1, 2)
            .reshape([b, 1, freqs, frames])
    }

    /// SpecAugment: zero random frequency bands and time spans of each spectrogram. The random
    /// numbers come from the device generator, which the loop seeds for every step.
    fn spec_augment(&self, s: Tensor<4>) -> Tensor<4> {
        let [b, _, freqs, frames] = s.dims();
        let [(f_masks, f_width), (t_masks, t_width)] = self.settings.masks;
        if f_masks + t_masks == 0 {
            return s;
        }
        let device = s.device();
        let draws = 2 * (f_masks + t_masks);
        let u: Vec<f32> = Tensor::<2>::random([b, draws], Distribution::Uniform(0.0, 1.0), &device)
            .into_data()
            .try_to_vec::<f32>()
            .expect("float random numbers");
        let mut keep = vec![1f32; b * freqs * frames];
        for sample in 0..b {
            let mut draw = u[sample * draws..(sample + 1) * draws].iter();
            let mut span = |len: usize, widest: usize| {
                let width = ((*draw.next().unwrap() * (widest + 1) as f32) as usize).min(len);
                let start = (*draw.next().unwrap() * (len - width + 1) as f32) as usize;
                start.min(len - width)..start.min(len - width) + width
            };
            let plane = &mut keep[sample * freqs * frames..(sample + 1) * freqs * frames];
            for _ in 0..f_masks {
                for f in span(freqs, f_width) {
                    plane[f * frames..(f + 1) * frames].fill(0.0);
                }
            }
            for _ in 0..t_masks {
                let times = span(frames, t_width);
                for f in 0..freqs {
                    plane[f * frames + times.start..f * frames + times.end].fill(0.0);
                }
            }
        }
        s * Tensor::<4>::from_data(TensorData::new(keep, [b, 1, freqs, frames]), &device)
    }

    fn classify(&self, mut x: Tensor<4>) -> Tensor<2> {
        for block in &self.blocks {
            let x1 = block.norm.forward(block.conv.forward(x));
            x = block.pool.forward(block.relu.forward(x1));
        }
        let [b, c, h, w] = x.dims();
        let pooled = x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]);
        self.classifier.forward(self.dropout.forward(pooled))
    }

    fn signal(&self, batch: &Batch) -> Result<Tensor<2>> {
        Ok(batch.float::<2>(&self.settings.input)?)
    }
}

impl Model for SpectrogramCnn {
    fn forward(&self, batch: &Batch) -> Result<Output> {
        let s = self.spec_augment(self.spectrogram(self.signal(batch)?));
        Ok(Output::output().with_float(self.settings.output.clone(), self.classify(s)))
    }

    fn forward_eval(&self, batch: &Batch) -> Result<Output> {
        let s = self.spectrogram(self.signal(batch)?);
        Ok(Output::output().with_float(self.settings.output.clone(), self.classify(s)))
    }
}

impl ModelSpec for SpectrogramCnnSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn DynModel>, BuildError> {
        if !self.n_fft.is_power_of_two() || self.n_fft < 8 {
            return Err(
                BuildError::at("n_fft", "must be a power of two, at least 8")
                    .hint("burn's STFT takes power-of-two frame sizes: 128, 256, 512"),
            );
        }
        if self.hop == 0 || self.hop > self.n_fft {
            return Err(BuildError::at("hop", "must be in 1..=n_fft"));
        }
        if self.channels.is_empty() || self.channels.contains(&0) || self.n_classes < 2 {
            return Err(BuildError::new(
                "channels needs at least one block of at least 1 channel, n_classes at least 2",
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(BuildError::at("dropout", "must be a probability in [0, 1)"));
        }
        let data = ctx.data()?;
        let info = data.require("input", &self.input)?;
        let [length] = info.sample_shape[..] else {
            return Err(BuildError::at(
                "input",
                format!(
                    "each sample of `{}` has shape {:?}; SpectrogramCNN needs signals [length]",
                    self.input, info.sample_shape
                ),
            ));
        };
        let (freqs, frames) = (self.n_fft / 2 + 1, length / self.hop + 1);
        let blocks = self.channels.len() as u32;
        if freqs >> blocks == 0 || frames >> blocks == 0 {
            return Err(BuildError::at(
                "channels",
                format!(
                    "{} pooling blocks leave nothing of a {freqs} x {frames} spectrogram",
                    blocks
                ),
            )
            .hint("use fewer blocks, a smaller hop or longer signals"));
        }
        let device = ctx.train_device();
        let mut previous = 1;
        let blocks = self
            .channels
            .iter()
            .map(|&c| {
                let block = Block2d {
                    conv: Conv2dConfig::new([previous, c], [3, 3])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(&device)
                        .into(),
                    norm: BatchNormConfig::new(c).init(&device).into(),
                    relu: Relu::default(),
                    pool: MaxPool2dConfig::new([2, 2]).init().into(),
                };
                previous = c;
                block
            })
            .collect();
        Ok(boxed(SpectrogramCnn {
            blocks,
            dropout: DropoutConfig::new(self.dropout).init(),
            classifier: LinearConfig::new(previous, self.n_classes)
                .init(&device)
                .into(),
            settings: Settings {
                n_fft: self.n_fft,
                hop: self.hop,
                masks: [
                    (self.freq_masks, self.freq_mask_width),
                    (self.time_masks, self.time_mask_width),
                ],
                input: self.input.clone(),
                output: self.output.clone(),
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(masks: usize) -> SpectrogramCnn {
        let device = Device::flex();
        SpectrogramCnn {
            blocks: Vec::new(),
            dropout: DropoutConfig::new(0.0).init(),
            classifier: LinearConfig::new(1, 2).init(&device).into(),
            settings: Settings {
                n_fft: 64,
                hop: 16,
                masks: [(masks, 4), (masks, 6)],
                input: "x".into(),
                output: "pred".into(),
            },
        }
    }

    #[test]
    fn a_tone_peaks_in_its_frequency_bin() {
        // 1500 Hz at 12 kHz with 64-point frames: bin 1500 / (12000 / 64) = 8.
        let signal: Vec<f32> = (0..1024)
            .map(|i| (2.0 * std::f32::consts::PI * 1500.0 * i as f32 / 12_000.0).sin())
            .collect();
        let x = Tensor::<2>::from_data(TensorData::new(signal, [1, 1024]), &Device::flex());
        let s = model(0).spectrogram(x);
        assert_eq!(s.dims(), [1, 1, 33, 65]);
        // The middle frame's spectrum.
        let column: Vec<f32> = s
            .narrow(3, 32, 1)
            .reshape([33])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let peak = column
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(peak, 8, "{column:?}");
    }

    #[test]
    fn spec_augment_zeroes_whole_bands_and_spans_and_nothing_else() {
        let device = Device::flex();
        device.seed(3);
        let (b, freqs, frames) = (64, 33, 65);
        let values: Vec<f32> = (0..b * freqs * frames).map(|v| 1.0 + v as f32).collect();
        let s = Tensor::<4>::from_data(
            TensorData::new(values.clone(), [b, 1, freqs, frames]),
            &device,
        );
        let masked: Vec<f32> = model(1)
            .spec_augment(s)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let (mut band_widths, mut span_widths) = (Vec::new(), Vec::new());
        for (plane, original) in masked
            .chunks(freqs * frames)
            .zip(values.chunks(freqs * frames))
        {
            let zero = |f: usize, t: usize| plane[f * frames + t] == 0.0;
            // A band is a row of zeros, a span a column of zeros: one of each at most.
            let band: Vec<usize> = (0..freqs)
                .filter(|&f| (0..frames).all(|t| zero(f, t)))
                .collect();
            let span: Vec<usize> = (0..frames)
                .filter(|&t| (0..freqs).all(|f| zero(f, t)))
                .collect();
            for cells in [&band, &span] {
                if let (Some(a), Some(z)) = (cells.first(), cells.last()) {
                    assert_eq!(z - a + 1, cells.len(), "contiguous");
                }
            }
            assert!(band.len() <= 4 && span.len() <= 6, "{band:?} {span:?}");
            // Every other value is the input's.
            for f in 0..freqs {
                for t in 0..frames {
                    let kept = !band.contains(&f) && !span.contains(&t);
                    let expected = if kept { original[f * frames + t] } else { 0.0 };
                    assert_eq!(plane[f * frames + t], expected);
                }
            }
            band_widths.push(band.len());
            span_widths.push(span.len());
        }
        // Over 64 spectrograms the widest band and span are drawn (a no-op would draw none).
        assert_eq!(band_widths.iter().max(), Some(&4), "{band_widths:?}");
        assert_eq!(span_widths.iter().max(), Some(&6), "{span_widths:?}");
    }

    #[test]
    fn evaluation_is_not_masked() {
        let device = Device::flex();
        let signal: Vec<f32> = (0..4 * 1024)
            .map(|i| ((i * 7919) % 113) as f32 / 113.0)
            .collect();
        let mut batch = Batch::batch();
        batch.insert_float(
            "x",
            Tensor::<2>::from_data(TensorData::new(signal, [4, 1024]), &device),
        );
        let spectrogram = |m: &SpectrogramCnn| m.spectrogram(m.signal(&batch).unwrap());
        let plain: Vec<f32> = spectrogram(&model(0))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let masking = model(2);
        device.seed(1);
        let eval = masking
            .forward_eval(&batch)
            .unwrap()
            .float::<2>("pred")
            .unwrap();
        let expected = masking.classify(spectrogram(&masking));
        assert_eq!(
            eval.into_data().try_to_vec::<f32>().unwrap(),
            expected.into_data().try_to_vec::<f32>().unwrap()
        );
        // Training masks the same spectrogram.
        device.seed(1);
        let trained = masking.spec_augment(spectrogram(&masking));
        assert_ne!(trained.into_data().try_to_vec::<f32>().unwrap(), plain);
    }
}
