//! Patch-level augmentations for sequence models: `patch_dropout`, `patch_shuffle`, `cutout`
//! and `patch_jitter`. A signal `[batch, channels..., time]` is cut into patches of
//! `patch_size` steps along its last axis (as a patch-based transformer embeds it); a token
//! sequence `[batch, tokens, features...]` (`tokens: true`) has one patch per token. Every
//! random number comes from the seed the loop gives, on the host.

use serde::{Deserialize, Serialize};
use stoker::Component;
use stoker::augment::Augmentation;
use stoker::batch::Batch;
use stoker::burn::tensor::{Int, Tensor, TensorData};
use stoker::error::{BuildError, Result, StokerError};
use stoker::rng::Rng;
use stoker::spec::{AugmentationSpec, BuildContext};

use crate::augment::{check_tensor, fold_3d, host_tensor, put_3d};

/// How a tensor is cut into patches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Layout {
    /// Patches of this many steps along the last axis.
    Signal(usize),
    /// One patch per index of axis 1.
    Tokens,
}

impl Layout {
    /// The layout the args name: exactly one of `patch_size` and `tokens: true`.
    fn of(patch_size: Option<usize>, tokens: bool) -> std::result::Result<Layout, BuildError> {
        match (patch_size, tokens) {
            (Some(0), _) => Err(BuildError::at("patch_size", "must be at least 1")),
            (Some(p), false) => Ok(Layout::Signal(p)),
            (None, true) => Ok(Layout::Tokens),
            (Some(_), true) => Err(BuildError::at(
                "tokens",
                "give either patch_size (patches of a signal's last axis) or tokens: true (one patch per token), not both",
            )),
            (None, false) => Err(BuildError::at(
                "patch_size",
                "is missing: give patch_size (steps per patch along the last axis) or tokens: true",
            )),
        }
    }

    /// Checks the layout against the data's tensor.
    pub(crate) fn check(
        &self,
        ctx: &BuildContext,
        tensor: &str,
    ) -> std::result::Result<(), BuildError> {
        check_tensor(ctx, tensor, 1)?;
        let info = ctx.data()?.require("tensor", tensor)?;
        match self {
            Layout::Signal(p) => {
                let length = *info.sample_shape.last().expect("rank >= 1");
                if length % p != 0 {
                    return Err(BuildError::at(
                        "patch_size",
                        format!(
                            "{p} does not divide the length {length} of `{tensor}`'s last axis"
                        ),
                    ));
                }
            }
            Layout::Tokens => {
                if info.sample_shape.len() < 2 {
                    return Err(BuildError::at(
                        "tokens",
                        format!(
                            "each sample of `{tensor}` has shape {:?}; tokens need [tokens, features]",
                            info.sample_shape
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The tensor as `[batch, channels, time]` with `patch` steps per patch, and its shape.
    fn view(&self, batch: &Batch, name: &str) -> Result<(Tensor<3>, usize, Vec<usize>)> {
        match self {
            Layout::Signal(p) => {
                let (t, shape) = fold_3d(batch, name, 1)?;
                Ok((t, *p, shape))
            }
            Layout::Tokens => {
                let rank = batch.shape(name)?.len();
                let (t, shape) = fold_3d(batch, name, rank - 2)?;
                Ok((t.swap_dims(1, 2), 1, shape))
            }
        }
    }

    /// Puts a tensor of [`view`](Layout::view)'s layout back under `name`.
    fn put(&self, batch: Batch, name: &str, t: Tensor<3>, shape: &[usize]) -> Result<Batch> {
        let t = match self {
            Layout::Signal(_) => t,
            Layout::Tokens => t.swap_dims(1, 2),
        };
        put_3d(batch, name, t, shape)
    }
}

/// Applies `change` to the viewed tensor: it gets the tensor `[b, m, l]`, the patch size and
/// the number of patches, and returns the changed tensor.
fn with_patches(
    layout: Layout,
    batch: Batch,
    name: &str,
    change: impl FnOnce(Tensor<3>, usize, usize) -> Result<Tensor<3>>,
) -> Result<Batch> {
    let (t, patch, shape) = layout.view(&batch, name)?;
    let l = t.dims()[2];
    if l % patch != 0 {
        return Err(StokerError::msg(format!(
            "`{name}` has {l} steps, not a multiple of patch_size {patch}"
        )));
    }
    let changed = change(t, patch, l / patch)?;
    layout.put(batch, name, changed, &shape)
}

/// `t` with every time index `i` of sample `s` read from `source[s][i]` (all channels alike).
fn gather_time(t: Tensor<3>, source: Vec<Vec<i64>>) -> Tensor<3> {
    let [b, m, l] = t.dims();
    let indices: Vec<i64> = source
        .iter()
        .flat_map(|row| std::iter::repeat_n(row.iter().copied(), m).flatten())
        .collect();
    let indices: Tensor<3, Int> =
        Tensor::from_data(TensorData::new(indices, [b, m, l]), &t.device());
    t.gather(2, indices)
}

fn tokens_default() -> bool {
    false
}

macro_rules! layout_fields {
    ($(#[$meta:meta])* $vis:vis struct $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        $vis struct $name {
            /// The batch tensor changed.
            #[serde(default = "stoker::names::input")]
            pub tensor: String,
            /// Steps per patch along the last axis (a signal).
            #[serde(default)]
            pub patch_size: Option<usize>,
            /// One patch per token of a `[batch, tokens, features...]` sequence instead.
            #[serde(default = "tokens_default")]
            pub tokens: bool,
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $name {
            fn layout(&self) -> std::result::Result<Layout, BuildError> {
                Layout::of(self.patch_size, self.tokens)
            }
        }
    };
}

layout_fields! {
    /// Zeroes each patch of each training sample with probability `rate` (all channels of the patch).
    #[derive(Debug, Clone, Serialize, Deserialize, Component)]
    #[serde(deny_unknown_fields)]
    #[component(augmentation, name = "patch_dropout")]
    pub struct PatchDropoutSpec {
        /// The probability of dropping a patch.
        rate: f64,
    }
}

/// Draws the kept patches and zeroes the others.
fn drop_patches(t: Tensor<3>, patch: usize, patches: usize, rate: f64, seed: u64) -> Tensor<3> {
    let [b, _, l] = t.dims();
    let mut rng = Rng::new(seed);
    let mut keep = Vec::with_capacity(b * l);
    for _ in 0..b * patches {
        let kept = if rng.next_f64() < rate { 0.0 } else { 1.0 };
        keep.extend(std::iter::repeat_n(kept, patch));
    }
    let mask = host_tensor(keep, [b, 1, l], &t);
    t * mask
}

impl Augmentation for PatchDropoutSpec {
    fn apply(&self, batch: Batch, seed: u64) -> Result<Batch> {
        let layout = self.layout().map_err(|e| StokerError::msg(e.message))?;
        with_patches(layout, batch, &self.tensor, |t, patch, patches| {
            Ok(drop_patches(t, patch, patches, self.rate, seed))
        })
    }
}

impl AugmentationSpec for PatchDropoutSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Augmentation>, BuildError> {
        if !(0.0..=1.0).contains(&self.rate) {
            return Err(BuildError::at("rate", "must be in [0, 1]"));
        }
        self.layout()?.check(ctx, &self.tensor)?;
        Ok(Box::new(self.clone()))
    }
}

layout_fields! {
    /// Puts the patches of each training sample in a random order of their own (Um et al. 2017's permutation, by patch).
    #[derive(Debug, Clone, Serialize, Deserialize, Component)]
    #[serde(deny_unknown_fields)]
    #[component(augmentation, name = "patch_shuffle")]
    pub struct PatchShuffleSpec {}
}

impl Augmentation for PatchShuffleSpec {
    fn apply(&self, batch: Batch, seed: u64) -> Result<Batch> {
        let layout = self.layout().map_err(|e| StokerError::msg(e.message))?;
        with_patches(layout, batch, &self.tensor, |t, patch, patches| {
            let mut rng = Rng::new(seed);
            let source = (0..t.dims()[0])
                .map(|_| {
                    // Fisher-Yates: order[k] is the patch that lands at position k.
                    let mut order: Vec<usize> = (0..patches).collect();
                    for k in (1..patches).rev() {
                        order.swap(k, rng.below(k as u64 + 1) as usize);
                    }
                    order
                        .iter()
                        .flat_map(|&from| (0..patch).map(move |j| (from * patch + j) as i64))
                        .collect()
                })
                .collect();
            Ok(gather_time(t, source))
        })
    }
}

impl AugmentationSpec for PatchShuffleSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Augmentation>, BuildError> {
        self.layout()?.check(ctx, &self.tensor)?;
        Ok(Box::new(self.clone()))
    }
}

fn one() -> usize {
    1
}

layout_fields! {
    /// Cutout for sequences (DeVries & Taylor 2017): zeroes `holes` blocks of each training sample, each up to max_patches consecutive patches by up to max_channels consecutive channels (default all), of uniform sizes at uniform places.
    #[derive(Debug, Clone, Serialize, Deserialize, Component)]
    #[serde(deny_unknown_fields)]
    #[component(augmentation, name = "cutout")]
    pub struct CutoutSpec {
        /// The most patches a block spans.
        max_patches: usize,
        /// The most channels a block spans (default: every channel).
        #[serde(default)]
        max_channels: Option<usize>,
        /// Blocks per sample.
        #[serde(default = "one")]
        holes: usize,
    }
}

/// A uniform span of at most `widest` (at least 1) of `len` positions.
fn span(rng: &mut Rng, len: usize, widest: usize) -> std::ops::Range<usize> {
    let width = 1 + rng.below(widest.clamp(1, len) as u64) as usize;
    let start = rng.below((len - width + 1) as u64) as usize;
    start..start + width
}

impl Augmentation for CutoutSpec {
    fn apply(&self, batch: Batch, seed: u64) -> Result<Batch> {
        let layout = self.layout().map_err(|e| StokerError::msg(e.message))?;
        with_patches(layout, batch, &self.tensor, |t, patch, patches| {
            let [b, m, l] = t.dims();
            let mut rng = Rng::new(seed);
            let mut keep = vec![1f32; b * m * l];
            for sample in 0..b {
                for _ in 0..self.holes {
                    let along = span(&mut rng, patches, self.max_patches);
                    let across = span(&mut rng, m, self.max_channels.unwrap_or(m));
                    for c in across {
                        let row = (sample * m + c) * l;
                        keep[row + along.start * patch..row + along.end * patch].fill(0.0);
                    }
                }
            }
            Ok(t.clone() * host_tensor(keep, [b, m, l], &t))
        })
    }
}

impl AugmentationSpec for CutoutSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Augmentation>, BuildError> {
        if self.max_patches == 0 {
            return Err(BuildError::at("max_patches", "must be at least 1"));
        }
        if self.max_channels == Some(0) {
            return Err(BuildError::at("max_channels", "must be at least 1"));
        }
        self.layout()?.check(ctx, &self.tensor)?;
        Ok(Box::new(self.clone()))
    }
}

layout_fields! {
    /// Moves the content of each patch of each training sample by its own offset, uniform in [-max_jitter, max_jitter] steps (tokens), reading across patch borders and wrapping at the ends: small timing errors between patches.
    #[derive(Debug, Clone, Serialize, Deserialize, Component)]
    #[serde(deny_unknown_fields)]
    #[component(augmentation, name = "patch_jitter")]
    pub struct PatchJitterSpec {
        /// The largest offset, in steps of the last axis (in tokens with tokens: true).
        max_jitter: usize,
    }
}

impl Augmentation for PatchJitterSpec {
    fn apply(&self, batch: Batch, seed: u64) -> Result<Batch> {
        let layout = self.layout().map_err(|e| StokerError::msg(e.message))?;
        with_patches(layout, batch, &self.tensor, |t, patch, patches| {
            let l = (patch * patches) as i64;
            let mut rng = Rng::new(seed);
            let span = 2 * self.max_jitter as u64 + 1;
            let source = (0..t.dims()[0])
                .map(|_| {
                    (0..patches)
                        .flat_map(|k| {
                            let offset = rng.below(span) as i64 - self.max_jitter as i64;
                            (0..patch).map(move |j| ((k * patch + j) as i64 - offset).rem_euclid(l))
                        })
                        .collect()
                })
                .collect();
            Ok(gather_time(t, source))
        })
    }
}

impl AugmentationSpec for PatchJitterSpec {
    fn build(&self, ctx: &BuildContext) -> std::result::Result<Box<dyn Augmentation>, BuildError> {
        self.layout()?.check(ctx, &self.tensor)?;
        Ok(Box::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stoker::burn::tensor::Device;

    /// `x` of `shape` with distinct non-zero values, as the augmentation returns it, with the input.
    fn run(aug: &dyn Augmentation, shape: [usize; 3], seed: u64) -> (Vec<f32>, Vec<f32>) {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|v| 1.0 + v as f32).collect();
        let mut batch = Batch::batch();
        let x = Tensor::<3>::from_data(TensorData::new(values.clone(), shape), &Device::flex());
        batch.insert_float("x", x);
        let out = aug.apply(batch, seed).unwrap();
        assert_eq!(out.shape("x").unwrap(), shape);
        let out = out
            .float::<3>("x")
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        (values, out)
    }

    /// Sample `s`, channel `c`, patch `k` (of `p` steps) of `v` laid out as [b, m, l].
    fn patch(v: &[f32], [_, m, l]: [usize; 3], s: usize, c: usize, k: usize, p: usize) -> &[f32] {
        &v[(s * m + c) * l + k * p..][..p]
    }

    #[test]
    fn patch_dropout_zeroes_whole_patches_at_its_rate() {
        let spec = PatchDropoutSpec {
            tensor: "x".into(),
            patch_size: Some(4),
            tokens: false,
            rate: 0.3,
        };
        let shape = [200, 2, 16];
        let (input, out) = run(&spec, shape, 1);
        let mut dropped = 0;
        for s in 0..200 {
            for k in 0..4 {
                let zero = patch(&out, shape, s, 0, k, 4).iter().all(|v| *v == 0.0);
                for c in 0..2 {
                    let expected: Vec<f32> = if zero {
                        vec![0.0; 4]
                    } else {
                        patch(&input, shape, s, c, k, 4).to_vec()
                    };
                    assert_eq!(
                        patch(&out, shape, s, c, k, 4),
                        expected,
                        "whole patches, every channel"
                    );
                }
                dropped += usize::from(zero);
            }
        }
        let rate = dropped as f64 / 800.0;
        assert!((rate - 0.3).abs() < 0.05, "{rate}");
    }

    #[test]
    fn patch_shuffle_reorders_whole_patches() {
        let spec = PatchShuffleSpec {
            tensor: "x".into(),
            patch_size: Some(3),
            tokens: false,
        };
        let shape = [50, 1, 12];
        let (input, out) = run(&spec, shape, 2);
        let mut moved = 0;
        for s in 0..50 {
            let mut from: Vec<usize> = (0..4)
                .map(|k| {
                    let got = patch(&out, shape, s, 0, k, 3);
                    (0..4)
                        .find(|&j| patch(&input, shape, s, 0, j, 3) == got)
                        .expect("an input patch, intact")
                })
                .collect();
            moved += usize::from(from != [0, 1, 2, 3]);
            from.sort();
            assert_eq!(from, [0, 1, 2, 3], "a permutation");
        }
        assert!(moved > 40, "{moved}");
    }

    #[test]
    fn tokens_are_patches_of_a_sequence() {
        // [batch, tokens, features]: each token (a row) moves whole.
        let spec = PatchShuffleSpec {
            tensor: "x".into(),
            patch_size: None,
            tokens: true,
        };
        let shape = [20, 5, 3];
        let (input, out) = run(&spec, shape, 3);
        let rows = |v: &[f32], s: usize| {
            v[s * 15..][..15]
                .chunks(3)
                .map(<[f32]>::to_vec)
                .collect::<Vec<_>>()
        };
        let mut changed = 0;
        for s in 0..20 {
            let (mut a, mut b) = (rows(&input, s), rows(&out, s));
            changed += usize::from(a != b);
            a.sort_by(|x, y| x[0].total_cmp(&y[0]));
            b.sort_by(|x, y| x[0].total_cmp(&y[0]));
            assert_eq!(a, b);
        }
        assert!(changed > 15, "{changed}");
    }

    #[test]
    fn cutout_zeroes_one_block_of_whole_patches_and_channels() {
        let spec = CutoutSpec {
            tensor: "x".into(),
            patch_size: Some(2),
            tokens: false,
            max_patches: 3,
            max_channels: Some(2),
            holes: 1,
        };
        let shape = [300, 4, 16];
        let (input, out) = run(&spec, shape, 4);
        let (mut widest, mut tallest) = (0, 0);
        for s in 0..300 {
            let zero =
                |c: usize, k: usize| patch(&out, shape, s, c, k, 2).iter().all(|v| *v == 0.0);
            let channels: Vec<usize> = (0..4).filter(|&c| (0..8).any(|k| zero(c, k))).collect();
            let patches: Vec<usize> = (0..8).filter(|&k| (0..4).any(|c| zero(c, k))).collect();
            for c in 0..4 {
                for k in 0..8 {
                    let inside = channels.contains(&c) && patches.contains(&k);
                    let expected: Vec<f32> = if inside {
                        vec![0.0; 2]
                    } else {
                        patch(&input, shape, s, c, k, 2).to_vec()
                    };
                    assert_eq!(
                        patch(&out, shape, s, c, k, 2),
                        expected,
                        "a rectangle, nothing else"
                    );
                }
            }
            assert!((1..=2).contains(&channels.len()) && (1..=3).contains(&patches.len()));
            assert_eq!(channels.last().unwrap() - channels[0] + 1, channels.len());
            assert_eq!(patches.last().unwrap() - patches[0] + 1, patches.len());
            widest = widest.max(patches.len());
            tallest = tallest.max(channels.len());
        }
        assert_eq!((widest, tallest), (3, 2));
    }

    #[test]
    fn patch_jitter_moves_each_patch_by_its_own_offset() {
        let spec = PatchJitterSpec {
            tensor: "x".into(),
            patch_size: Some(4),
            tokens: false,
            max_jitter: 2,
        };
        let shape = [100, 1, 16];
        let (input, out) = run(&spec, shape, 5);
        let mut offsets = std::collections::BTreeSet::new();
        for s in 0..100 {
            let row = &input[s * 16..][..16];
            for k in 0..4 {
                let got = patch(&out, shape, s, 0, k, 4);
                let offset = (-2i64..=2)
                    .find(|d| {
                        (0..4).all(|j| {
                            got[j] == row[((k * 4 + j) as i64 - d).rem_euclid(16) as usize]
                        })
                    })
                    .expect("a window of the input moved by at most 2 steps");
                offsets.insert(offset);
            }
        }
        assert_eq!(
            offsets.into_iter().collect::<Vec<_>>(),
            vec![-2, -1, 0, 1, 2]
        );
    }
}
