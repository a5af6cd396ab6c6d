//! `mixup` and `cutmix`: augmentations that blend each training sample with another of the same
//! batch and blend their class targets alike, so the targets become class probabilities
//! `[batch, classes]` (the classification losses take them as PyTorch's `cross_entropy` does).
//! Metrics on a mixed batch score against each sample's dominant class.

use serde::{Deserialize, Serialize};
use stoker::Component;
use stoker::augment::Augmentation;
use stoker::batch::Batch;
use stoker::burn::tensor::{Int, Tensor, TensorData};
use stoker::data::ElementKind;
use stoker::error::{BuildError, Result, StokerError};
use stoker::rng::Rng;
use stoker::spec::{AugmentationSpec, BuildContext};

use crate::augment::{check_tensor, fold_3d, host_tensor, put_3d};

fn default_mixup_alpha() -> f64 {
    0.2
}
fn default_cutmix_alpha() -> f64 {
    1.0
}
fn always() -> f64 {
    1.0
}
fn one_axis() -> usize {
    1
}

/// What mixup and cutmix share: which tensors they blend, how often, and the targets' classes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Blend {
    tensor: String,
    target: String,
    classes: usize,
    alpha: f64,
    probability: f64,
}

/// The draw of one batch: the partner of each sample and lambda, the share of the sample itself.
struct Pairing {
    partners: Vec<usize>,
    lambda: f64,
}

impl Blend {
    fn check(&self, ctx: &BuildContext, min_rank: usize) -> std::result::Result<(), BuildError> {
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(BuildError::at(
                "alpha",
                "must be positive (lambda ~ Beta(alpha, alpha))",
            ));
        }
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(BuildError::at("probability", "must be in [0, 1]"));
        }
        if self.classes < 2 {
            return Err(BuildError::at("classes", "needs at least 2 classes"));
        }
        check_tensor(ctx, &self.tensor, min_rank)?;
        let data = ctx.data()?;
        let info = data.require("target", &self.target)?;
        let ok = match info.kind {
            ElementKind::Int => info.sample_len() == 1,
            ElementKind::Float => info.sample_shape == [self.classes],
        };
        if !ok {
            return Err(BuildError::at(
                "target",
                format!(
                    "`{}` has samples of shape {:?}; mixing needs one integer label per sample or {} class probabilities",
                    self.target, info.sample_shape, self.classes
                ),
            ));
        }
        Ok(())
    }

    /// The pairing of this batch, or `None` when the batch is left as it is (with probability
    /// 1 - `probability`).
    fn draw(&self, rng: &mut Rng, batch_size: usize) -> Option<Pairing> {
        if self.probability < 1.0 && rng.next_f64() >= self.probability {
            return None;
        }
        Some(Pairing {
            partners: rng.permutation(batch_size),
            lambda: rng.beta(self.alpha, self.alpha),
        })
    }

    /// The targets as probabilities blended by `lambda`: lambda x the sample's own + (1 - lambda)
    /// x its partner's.
    fn blend_targets(&self, batch: &Batch, pairing: &Pairing) -> Result<Tensor<2>> {
        let name = &self.target;
        let c = self.classes;
        let lambda = pairing.lambda;
        if !batch.is_int(name)? {
            let p: Tensor<2> = batch.float::<2>(name)?;
            if p.dims()[1] != c {
                return Err(StokerError::msg(format!(
                    "`{name}` holds {} class probabilities per sample, not {c}",
                    p.dims()[1]
                )));
            }
            let partners = index_tensor(&pairing.partners, &p.device());
            return Ok(
                p.clone().mul_scalar(lambda) + p.select(0, partners).mul_scalar(1.0 - lambda)
            );
        }
        // Labels are a few integers: blend them on the host, where each is checked too.
        let n = batch.batch_size();
        let labels = batch.int_flat(name)?;
        let device = labels.device();
        let labels: Vec<i64> = labels
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .map_err(|e| StokerError::msg(format!("reading `{name}`: {e:?}")))?;
        if let Some(bad) = labels.iter().find(|&&l| l < 0 || l as usize >= c) {
            return Err(StokerError::msg(format!(
                "`{name}` has the label {bad}, outside the {c} classes the augmentation was given (`classes: {c}`)"
            )));
        }
        let mut probabilities = vec![0f32; n * c];
        for (i, &partner) in pairing.partners.iter().enumerate() {
            probabilities[i * c + labels[i] as usize] += lambda as f32;
            probabilities[i * c + labels[partner] as usize] += (1.0 - lambda) as f32;
        }
        Ok(Tensor::from_data(
            TensorData::new(probabilities, [n, c]),
            &device,
        ))
    }
}

fn index_tensor(indices: &[usize], device: &stoker::burn::tensor::Device) -> Tensor<1, Int> {
    let values: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(values, [indices.len()]), device)
}

/// Blends every value of `tensor` where `mask` is 1 (`[1, 1, last]`, broadcast) with the
/// partner's, keeps the rest, and replaces the targets by blended probabilities.
fn blend(
    blend: &Blend,
    batch: Batch,
    pairing: &Pairing,
    trailing: usize,
    partner_share: impl FnOnce(&Tensor<3>) -> Tensor<3>,
) -> Result<Batch> {
    let targets = blend.blend_targets(&batch, pairing)?;
    let (x, shape) = fold_3d(&batch, &blend.tensor, trailing)?;
    let partners = index_tensor(&pairing.partners, &x.device());
    let share = partner_share(&x);
    let mixed = x.clone() * share.clone().neg().add_scalar(1.0) + x.select(0, partners) * share;
    let mut batch = put_3d(batch, &blend.tensor, mixed, &shape)?;
    batch.insert_float(blend.target.clone(), targets);
    Ok(batch)
}

/// mixup (Zhang et al., 2018): each training sample becomes lambda x itself + (1 - lambda) x
/// another sample of the batch, lambda ~ Beta(alpha, alpha) once per batch, and its target the
/// same blend of the two one-hot labels.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(augmentation, name = "mixup")]
pub struct MixupSpec {
    /// The batch tensor blended.
    #[serde(default = "stoker::names::input")]
    pub tensor: String,
    /// The class targets blended: integer labels, or class probabilities.
    #[serde(default = "stoker::names::target")]
    pub target: String,
    /// The number of classes.
    pub classes: usize,
    /// lambda ~ Beta(alpha, alpha).
    #[serde(default = "default_mixup_alpha")]
    pub alpha: f64,
    /// The share of batches mixed; the others are left as they are.
    #[serde(default = "always")]
    pub probability: f64,
}

impl MixupSpec {
    fn blend_spec(&self) -> Blend {
        Blend {
            tensor: self.tensor.clone(),
            target: self.target.clone(),
            classes: self.classes,
            alpha: self.alpha,
            probability: self.probability,
        }
    }
}

impl Augmentation for MixupSpec {
    fn apply(&self, batch: Batch, seed: u64) -> Result<Batch> {
        let spec = self.blend_spec();
        let Some(pairing) = spec.draw(&mut Rng::new(seed), batch.batch_size()) else {
            return Ok(batch);
        };
        let share = 1.0 - pairing.lambda;
        blend(&spec, batch, &pairing, 1, |x| {
            host_tensor(vec![share as f32], [1, 1, 1], x)
        })
    }
}

impl AugmentationSpec for MixupSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Augmentation>, BuildError> {
        self.blend_spec().check(ctx, 0)?;
        Ok(Box::new(self.clone()))
    }
}

/// CutMix (Yun et al., 2019): a window of each training sample is replaced by the same window of
/// another sample of the batch, and its target blended by the share of values kept. The window is
/// cut from the last axis (`axes: 1`, signals: a share 1 - lambda of its length) or from the last
/// two (`axes: 2`, images: a box of sides sqrt(1 - lambda), centred at random and clipped at the
/// edges), lambda ~ Beta(alpha, alpha) once per batch.
#[derive(Debug, Clone, Serialize, Deserialize, Component)]
#[serde(deny_unknown_fields)]
#[component(augmentation, name = "cutmix")]
pub struct CutmixSpec {
    /// The batch tensor cut.
    #[serde(default = "stoker::names::input")]
    pub tensor: String,
    /// The class targets blended: integer labels, or class probabilities.
    #[serde(default = "stoker::names::target")]
    pub target: String,
    /// The number of classes.
    pub classes: usize,
    /// lambda ~ Beta(alpha, alpha).
    #[serde(default = "default_cutmix_alpha")]
    pub alpha: f64,
    /// The share of batches cut; the others are left as they are.
    #[serde(default = "always")]
    pub probability: f64,
    /// 1: cut a window of the last axis; 2: cut a box of the last two.
    #[serde(default = "one_axis")]
    pub axes: usize,
}

impl CutmixSpec {
    fn blend_spec(&self) -> Blend {
        Blend {
            tensor: self.tensor.clone(),
            target: self.target.clone(),
            classes: self.classes,
            alpha: self.alpha,
            probability: self.probability,
        }
    }

    /// The window for `lambda` on a sample whose last axes are `sides` (one or two), as a 0/1 mask
    /// over those axes (row-major), drawn from `rng`.
    fn window(&self, rng: &mut Rng, lambda: f64, sides: &[usize]) -> Vec<f32> {
        match *sides {
            [l] => {
                let width = ((1.0 - lambda) * l as f64).round() as usize;
                let start = rng.below((l - width + 1) as u64) as usize;
                let mut mask = vec![0f32; l];
                mask[start..start + width].fill(1.0);
                mask
            }
            [h, w] => {
                let ratio = (1.0 - lambda).sqrt();
                let (cut_h, cut_w) = ((h as f64 * ratio) as usize, (w as f64 * ratio) as usize);
                let (cy, cx) = (rng.below(h as u64) as usize, rng.below(w as u64) as usize);
                let (y0, y1) = (cy.saturating_sub(cut_h / 2), (cy + cut_h / 2).min(h));
                let (x0, x1) = (cx.saturating_sub(cut_w / 2), (cx + cut_w / 2).min(w));
                let mut mask = vec![0f32; h * w];
                for row in y0..y1 {
                    mask[row * w + x0..row * w + x1].fill(1.0);
                }
                mask
            }
            _ => unreachable!("cutmix cuts one or two axes"),
        }
    }
}

impl Augmentation for CutmixSpec {
    fn apply(&self, batch: Batch, seed: u64) -> Result<Batch> {
        let spec = self.blend_spec();
        let mut rng = Rng::new(seed);
        let Some(mut pairing) = spec.draw(&mut rng, batch.batch_size()) else {
            return Ok(batch);
        };
        let shape = batch.shape(&self.tensor)?;
        let sides = &shape[shape.len() - self.axes..];
        let mask = self.window(&mut rng, pairing.lambda, sides);
        // lambda becomes the share actually kept, after rounding and clipping.
        pairing.lambda = 1.0 - mask.iter().sum::<f32>() as f64 / mask.len() as f64;
        let len = mask.len();
        blend(&spec, batch, &pairing, self.axes, |x| {
            host_tensor(mask, [1, 1, len], x)
        })
    }
}

impl AugmentationSpec for CutmixSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Augmentation>, BuildError> {
        if !(1..=2).contains(&self.axes) {
            return Err(BuildError::at(
                "axes",
                "1 (a window of the last axis) or 2 (a box of the last two)",
            ));
        }
        self.blend_spec().check(ctx, self.axes)?;
        Ok(Box::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stoker::burn::tensor::Device;

    /// A batch of `n` samples of shape `sample`, sample i holding 1000 i + its flat position,
    /// labelled i.
    fn batch(n: usize, sample: &[usize]) -> Batch {
        let len: usize = sample.iter().product();
        let values: Vec<f32> = (0..n)
            .flat_map(|i| (0..len).map(move |k| (1000 * i + k) as f32))
            .collect();
        let mut batch = Batch::batch();
        let device = Device::flex();
        let mut shape = vec![n];
        shape.extend_from_slice(sample);
        match shape.len() {
            2 => batch.insert_float(
                "x",
                Tensor::<2>::from_data(TensorData::new(values, [n, len]), &device),
            ),
            4 => batch.insert_float(
                "x",
                Tensor::<4>::from_data(
                    TensorData::new(values, [n, sample[0], sample[1], sample[2]]),
                    &device,
                ),
            ),
            r => panic!("rank {r}"),
        }
        let labels: Vec<i64> = (0..n as i64).collect();
        batch.insert_int(
            "y",
            Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), &device),
        );
        batch
    }

    fn read(batch: &Batch, name: &str) -> Vec<f32> {
        batch
            .float_flat(name)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    /// For each sample: its partner and its own share lambda, read from the blended targets
    /// (labels are the sample indices).
    fn pairs(targets: &[f32], n: usize) -> Vec<(usize, f32)> {
        (0..n)
            .map(|i| {
                let row = &targets[i * n..(i + 1) * n];
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
                let partner = (0..n)
                    .filter(|&j| j != i)
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .filter(|&j| row[j] > 0.0)
                    .unwrap_or(i);
                (partner, row[i])
            })
            .collect()
    }

    #[test]
    fn mixup_blends_inputs_and_one_hot_labels_by_the_same_lambda() {
        let spec = MixupSpec {
            tensor: "x".into(),
            target: "y".into(),
            classes: 6,
            alpha: 1.0,
            probability: 1.0,
        };
        let (n, len) = (6, 5);
        let out = spec.apply(batch(n, &[len]), 4).unwrap();
        let x = read(&out, "x");
        let targets = read(&out, "y");
        let pairs = pairs(&targets, n);
        let lambda = pairs[0].1;
        assert!(lambda > 0.0 && lambda < 1.0);
        let mut partners: Vec<usize> = pairs.iter().map(|p| p.0).collect();
        for (i, &(j, own)) in pairs.iter().enumerate() {
            if j != i {
                assert!((own - lambda).abs() < 1e-6, "one lambda per batch");
            }
            for k in 0..len {
                let want = lambda * (1000 * i + k) as f32 + (1.0 - lambda) * (1000 * j + k) as f32;
                assert!((x[i * len + k] - want).abs() < 1e-2, "{i} {k}");
            }
        }
        partners.sort();
        assert_eq!(
            partners,
            (0..n).collect::<Vec<_>>(),
            "partners are a permutation"
        );
        // The same seed, the same mix.
        assert_eq!(read(&spec.apply(batch(n, &[len]), 4).unwrap(), "x"), x);
    }

    #[test]
    fn cutmix_pastes_one_window_of_the_partner_and_weighs_labels_by_its_length() {
        let spec = CutmixSpec {
            tensor: "x".into(),
            target: "y".into(),
            classes: 4,
            alpha: 1.0,
            probability: 1.0,
            axes: 1,
        };
        let (n, len) = (4, 40);
        for seed in 0..5 {
            let out = spec.apply(batch(n, &[len]), seed).unwrap();
            let x = read(&out, "x");
            let pairs = pairs(&read(&out, "y"), n);
            for (i, &(j, own)) in pairs.iter().enumerate() {
                // Each value is the sample's own or its partner's at the same position.
                let from_partner: Vec<usize> = (0..len)
                    .filter(|&k| {
                        let own_value = (1000 * i + k) as f32;
                        let other = (1000 * j + k) as f32;
                        assert!(x[i * len + k] == own_value || x[i * len + k] == other);
                        j != i && x[i * len + k] == other
                    })
                    .collect();
                if let (Some(a), Some(b)) = (from_partner.first(), from_partner.last()) {
                    assert_eq!(b - a + 1, from_partner.len(), "one window");
                }
                if j != i {
                    let kept = 1.0 - from_partner.len() as f32 / len as f32;
                    assert!((own - kept).abs() < 1e-6, "lambda {own} vs kept {kept}");
                }
            }
        }
    }

    #[test]
    fn cutmix_on_two_axes_pastes_a_box_in_every_channel() {
        let spec = CutmixSpec {
            tensor: "x".into(),
            target: "y".into(),
            classes: 3,
            alpha: 1.0,
            probability: 1.0,
            axes: 2,
        };
        let (n, c, h, w) = (3, 2, 8, 10);
        let out = spec.apply(batch(n, &[c, h, w]), 7).unwrap();
        let x = read(&out, "x");
        let pairs = pairs(&read(&out, "y"), n);
        for (i, &(j, own)) in pairs.iter().enumerate() {
            if j == i {
                continue;
            }
            let base = i * c * h * w;
            let pasted = |k: usize| x[base + k] == (1000 * j + k) as f32;
            let cells: Vec<(usize, usize)> = (0..h * w)
                .filter(|&k| pasted(k))
                .map(|k| (k / w, k % w))
                .collect();
            // The same box in the second channel.
            for &(r, col) in &cells {
                assert!(pasted(h * w + r * w + col));
            }
            if let (Some(r0), Some(r1)) = (
                cells.iter().map(|c| c.0).min(),
                cells.iter().map(|c| c.0).max(),
            ) {
                let c0 = cells.iter().map(|c| c.1).min().unwrap();
                let c1 = cells.iter().map(|c| c.1).max().unwrap();
                assert_eq!(cells.len(), (r1 - r0 + 1) * (c1 - c0 + 1), "a rectangle");
            }
            let kept = 1.0 - cells.len() as f32 / (h * w) as f32;
            assert!((own - kept).abs() < 1e-6);
        }
    }

    #[test]
    fn a_label_outside_the_classes_is_an_error_and_probability_zero_mixes_nothing() {
        let spec = MixupSpec {
            tensor: "x".into(),
            target: "y".into(),
            classes: 3,
            alpha: 0.2,
            probability: 1.0,
        };
        let err = spec.apply(batch(5, &[2]), 1).err().unwrap().to_string();
        assert!(
            err.contains("the label 3") && err.contains("classes: 3"),
            "{err}"
        );
        let never = MixupSpec {
            probability: 0.0,
            ..spec
        };
        let out = never.apply(batch(5, &[2]), 1).unwrap();
        assert!(out.is_int("y").unwrap());
        assert_eq!(read(&out, "x"), read(&batch(5, &[2]), "x"));
    }
}
