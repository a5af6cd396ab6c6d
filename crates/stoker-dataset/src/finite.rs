//! Refusing NaN and infinite values where data is loaded: a NaN in one sample would otherwise
//! train on, silently, into NaN weights.

use std::path::Path;

use crate::host::{HostData, HostTensor};

/// The first NaN or infinite value of a float tensor: its sample, its position within the
/// sample, the value, and how many such values the tensor has.
pub fn first_non_finite(tensor: &HostTensor) -> Option<(usize, Vec<usize>, f32, usize)> {
    let HostData::F32(values) = &tensor.data else {
        return None;
    };
    first_non_finite_value(values, tensor.sample_shape())
}

/// [`first_non_finite`] of `values`, samples of `shape` one after the other.
pub fn first_non_finite_value(
    values: &[f32],
    shape: &[usize],
) -> Option<(usize, Vec<usize>, f32, usize)> {
    let first = values.iter().position(|v| !v.is_finite())?;
    let count = values[first..].iter().filter(|v| !v.is_finite()).count();
    let width: usize = shape.iter().product();
    let (sample, mut within) = (first / width.max(1), first % width.max(1));
    let mut position = vec![0; shape.len()];
    for (axis, &size) in shape.iter().enumerate().rev() {
        position[axis] = within % size;
        within /= size;
    }
    Some((sample, position, values[first], count))
}

/// Refuses the first non-finite value of `tensors` (read from `path`), naming the file, the
/// tensor, the sample and the position within it.
pub fn check_finite(path: &Path, tensors: &[HostTensor]) -> Result<(), String> {
    for tensor in tensors {
        if let Some((sample, position, value, count)) = first_non_finite(tensor) {
            let more = match count {
                1 => String::new(),
                n => format!(" ({} more non-finite values in it)", n - 1),
            };
            return Err(format!(
                "`{}`: tensor `{}` holds {value} at sample {sample}, position {position:?}{more}",
                path.display(),
                tensor.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_sample_and_the_position_of_the_first_non_finite_value() {
        // 3 samples of [2, 3]: sample 1, row 1, column 2 is flat index 6 + 3 + 2 = 11.
        let mut values = vec![0.5f32; 18];
        values[11] = f32::NAN;
        values[16] = f32::NEG_INFINITY;
        let x = HostTensor::f32("x", vec![3, 2, 3], values);
        assert_eq!(
            first_non_finite(&x).map(|(s, p, _, n)| (s, p, n)),
            Some((1, vec![1, 2], 2))
        );
        let ok = HostTensor::f32("y", vec![3], vec![1.0, 2.0, 3.0]);
        assert_eq!(first_non_finite(&ok), None);
        let labels = HostTensor::i64("label", vec![2], vec![0, 1]);
        assert!(check_finite(Path::new("d.npz"), &[ok, labels.clone()]).is_ok());
        assert_eq!(
            check_finite(Path::new("d.npz"), &[labels, x]).unwrap_err(),
            "`d.npz`: tensor `x` holds NaN at sample 1, position [1, 2] (1 more non-finite values in it)"
        );
        let scalar_rows = HostTensor::f32("t", vec![4], vec![0.0, 1.0, f32::INFINITY, 0.0]);
        assert_eq!(
            check_finite(Path::new("t.csv"), &[scalar_rows]).unwrap_err(),
            "`t.csv`: tensor `t` holds inf at sample 2, position []"
        );
    }
}
