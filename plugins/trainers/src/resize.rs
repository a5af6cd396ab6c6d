//! Resizing the trailing axes of batch tensors: a random crop (one window per sample, the same
//! window for every tensor of the sample), a linear resampling that keeps the grid's ends, or a
//! subsampling that keeps every k-th point.

use serde::{Deserialize, Serialize};
use stoker::burn::tensor::{Int, TensorData};
use stoker::prelude::*;
use stoker::rng::Rng;

/// How a tensor is brought to a smaller size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// A window of the size at a random offset, drawn per sample: a shorter signal at the same
    /// sampling rate (signals).
    #[default]
    Crop,
    /// Linear interpolation onto `size` points spanning the same interval, both ends kept
    /// (`align_corners=True`): the same domain on a coarser grid (fields).
    Resample,
    /// Every k-th point from the first, k = the axis' length / size (which must divide it):
    /// the coarser grid FNO users make with `x[:, ::k, ::k]`.
    Subsample,
}

/// Crop windows: for each sample, the offset of its window along each resized axis.
pub type Offsets = Vec<Vec<usize>>;

/// Random crop offsets for `batch` samples whose trailing axes of lengths `full` are cut to
/// `size`, each uniform over the positions that fit.
pub fn draw_offsets(batch: usize, full: &[usize], size: &[usize], rng: &mut Rng) -> Offsets {
    (0..batch)
        .map(|_| {
            full.iter()
                .zip(size)
                .map(|(&n, &m)| rng.below((n - m + 1) as u64) as usize)
                .collect()
        })
        .collect()
}

/// `flat` (a tensor of shape `shape`, flattened to `[batch, values]`) with its last
/// `size.len()` axes resized to `size` by `mode` (`offsets` for a crop), flattened again, and
/// its new shape.
pub fn resize(
    flat: Tensor<2>,
    shape: &[usize],
    size: &[usize],
    mode: ResizeMode,
    offsets: &Offsets,
) -> (Tensor<2>, Vec<usize>) {
    let first = shape.len() - size.len();
    let mut shape = shape.to_vec();
    let mut x = flat;
    for (k, &m) in size.iter().enumerate() {
        let axis = first + k;
        if shape[axis] == m {
            continue;
        }
        let folded = fold(x, &shape, axis);
        let resized = match mode {
            ResizeMode::Crop => crop(folded, m, shape[0], |b| offsets[b][k]),
            ResizeMode::Resample => resample(folded, m),
            ResizeMode::Subsample => subsample(folded, m),
        };
        shape[axis] = m;
        x = resized.reshape([shape[0], shape[1..].iter().product::<usize>()]);
    }
    (x, shape)
}

/// `x` viewed as `[outer, n, inner]` around `axis` of `shape`.
fn fold(x: Tensor<2>, shape: &[usize], axis: usize) -> Tensor<3> {
    let outer = shape[..axis].iter().product::<usize>();
    let inner = shape[axis + 1..].iter().product::<usize>();
    x.reshape([outer, shape[axis], inner])
}

/// Windows of `m` points of `x` (`[outer, n, inner]`, `batch` samples of `outer / batch` rows)
/// starting at each sample's offset.
fn crop(x: Tensor<3>, m: usize, batch: usize, offset: impl Fn(usize) -> usize) -> Tensor<3> {
    let [outer, _, inner] = x.dims();
    let rows = outer / batch;
    let mut indices = Vec::with_capacity(outer * m * inner);
    for row in 0..outer {
        let start = offset(row / rows) as i64;
        for j in 0..m as i64 {
            indices.extend(std::iter::repeat_n(start + j, inner));
        }
    }
    let indices: Tensor<3, Int> =
        Tensor::from_data(TensorData::new(indices, [outer, m, inner]), &x.device());
    x.gather(1, indices)
}

/// `x` (`[outer, n, inner]`) linearly interpolated onto `m` points along its middle axis.
fn resample(x: Tensor<3>, m: usize) -> Tensor<3> {
    let [outer, n, inner] = x.dims();
    let weights: Tensor<2> = Tensor::from_data(
        TensorData::new(interpolation_matrix(n, m), [n, m]),
        &x.device(),
    );
    x.swap_dims(1, 2)
        .reshape([outer * inner, n])
        .matmul(weights)
        .reshape([outer, inner, m])
        .swap_dims(1, 2)
}

/// The `[n, m]` matrix that interpolates `n` points linearly onto `m` points spanning the same
/// interval (output `j` sits at input position `j (n - 1) / (m - 1)`), row-major.
pub fn interpolation_matrix(n: usize, m: usize) -> Vec<f32> {
    let mut w = vec![0.0f32; n * m];
    for j in 0..m {
        let position = if m == 1 {
            0.0
        } else {
            j as f64 * (n - 1) as f64 / (m - 1) as f64
        };
        let below = (position.floor() as usize).min(n - 1);
        let fraction = position - below as f64;
        w[below * m + j] += (1.0 - fraction) as f32;
        if fraction > 0.0 {
            w[(below + 1) * m + j] += fraction as f32;
        }
    }
    w
}

/// Every `n / m`-th point of `x` (`[outer, n, inner]`) along its middle axis, from the first.
fn subsample(x: Tensor<3>, m: usize) -> Tensor<3> {
    let [outer, n, inner] = x.dims();
    let stride = n / m;
    x.reshape([outer, m, stride, inner])
        .narrow(2, 0, 1)
        .reshape([outer, m, inner])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::default()
    }

    fn flat(values: Vec<f32>, batch: usize) -> Tensor<2> {
        let n = values.len() / batch;
        Tensor::from_data(TensorData::new(values, [batch, n]), &device())
    }

    fn values(x: Tensor<2>) -> Vec<f32> {
        x.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn a_crop_takes_each_samples_own_window_of_every_channel() {
        // Two samples of 2 channels x 6 steps: value = 100 b + 10 c + t.
        let data: Vec<f32> = (0..2)
            .flat_map(|b| {
                (0..2).flat_map(move |c| (0..6).map(move |t| (100 * b + 10 * c + t) as f32))
            })
            .collect();
        let offsets = vec![vec![1], vec![3]];
        let (x, shape) = resize(flat(data, 2), &[2, 2, 6], &[3], ResizeMode::Crop, &offsets);
        assert_eq!(shape, [2, 2, 3]);
        assert_eq!(
            values(x),
            [
                1., 2., 3., 11., 12., 13., 103., 104., 105., 113., 114., 115.
            ]
        );
    }

    #[test]
    fn a_crop_of_a_field_cuts_the_same_window_along_both_axes() {
        // One 4x4 field, value = 10 row + column, cropped to 2x3 at (row 2, column 1).
        let data: Vec<f32> = (0..4)
            .flat_map(|r| (0..4).map(move |c| (10 * r + c) as f32))
            .collect();
        let (x, shape) = resize(
            flat(data, 1),
            &[1, 4, 4],
            &[2, 3],
            ResizeMode::Crop,
            &vec![vec![2, 1]],
        );
        assert_eq!(shape, [1, 2, 3]);
        assert_eq!(values(x), [21., 22., 23., 31., 32., 33.]);
    }

    #[test]
    fn offsets_cover_every_window_that_fits_and_no_other() {
        let mut rng = Rng::new(5);
        let offsets = draw_offsets(400, &[10, 4], &[7, 4], &mut rng);
        let mut seen: Vec<usize> = offsets.iter().map(|o| o[0]).collect();
        assert!(offsets.iter().all(|o| o[1] == 0));
        seen.sort();
        seen.dedup();
        assert_eq!(seen, [0, 1, 2, 3]);
    }

    #[test]
    fn resampling_interpolates_linearly_between_the_grids_ends() {
        // 5 points 0, 4, 8, 12, 16 onto 3 points at positions 0, 2, 4: 0, 8, 16; onto 4
        // points at 0, 4/3, 8/3, 4: 0, 16/3, 32/3, 16.
        let x = flat(vec![0., 4., 8., 12., 16.], 1);
        let (three, _) = resize(x.clone(), &[1, 5], &[3], ResizeMode::Resample, &vec![]);
        assert_eq!(values(three), [0., 8., 16.]);
        let (four, _) = resize(x, &[1, 5], &[4], ResizeMode::Resample, &vec![]);
        let four = values(four);
        for (got, want) in four.iter().zip([0.0, 16.0 / 3.0, 32.0 / 3.0, 16.0]) {
            assert!((got - want).abs() < 1e-5, "{four:?}");
        }
    }

    #[test]
    fn resampling_a_field_is_bilinear() {
        // f(r, c) = r + 10 c on a 3x3 grid onto 2x2 (the corners): bilinear keeps a linear
        // field exact.
        let data: Vec<f32> = (0..3)
            .flat_map(|r| (0..3).map(move |c| (r + 10 * c) as f32))
            .collect();
        let (x, shape) = resize(
            flat(data, 1),
            &[1, 3, 3],
            &[2, 2],
            ResizeMode::Resample,
            &vec![],
        );
        assert_eq!(shape, [1, 2, 2]);
        assert_eq!(values(x), [0., 20., 2., 22.]);
    }

    #[test]
    fn subsampling_keeps_every_kth_point_from_the_first() {
        let data: Vec<f32> = (0..4)
            .flat_map(|r| (0..4).map(move |c| (10 * r + c) as f32))
            .collect();
        let (x, shape) = resize(
            flat(data, 1),
            &[1, 4, 4],
            &[2, 2],
            ResizeMode::Subsample,
            &vec![],
        );
        assert_eq!(shape, [1, 2, 2]);
        assert_eq!(values(x), [0., 2., 20., 22.]);
    }

    #[test]
    fn the_full_size_is_left_as_it_is() {
        let x = flat(vec![1., 2., 3., 4.], 1);
        let (same, shape) = resize(x, &[1, 4], &[4], ResizeMode::Resample, &vec![]);
        assert_eq!(shape, [1, 4]);
        assert_eq!(values(same), [1., 2., 3., 4.]);
    }
}
