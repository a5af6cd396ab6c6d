//! Tensors in host memory, as read from a file or generated, before they go to the device.

use stoker::data::ElementKind;

/// The values of a host tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum HostData {
    /// Floating point values (any float dtype is read as f32).
    F32(Vec<f32>),
    /// Integer values (any integer or bool dtype is read as i64).
    I64(Vec<i64>),
}

/// A named tensor in host memory; the first dimension indexes samples.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Its name.
    pub name: String,
    /// Its full shape, samples first.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub data: HostData,
}

impl HostTensor {
    /// A float tensor.
    pub fn f32(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        HostTensor {
            name: name.into(),
            shape,
            data: HostData::F32(data),
        }
    }

    /// An integer tensor.
    pub fn i64(name: impl Into<String>, shape: Vec<usize>, data: Vec<i64>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        HostTensor {
            name: name.into(),
            shape,
            data: HostData::I64(data),
        }
    }

    /// The number of samples (the first dimension; 1 for a scalar).
    pub fn samples(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// The shape of one sample.
    pub fn sample_shape(&self) -> &[usize] {
        self.shape.get(1..).unwrap_or(&[])
    }

    /// Float or int.
    pub fn kind(&self) -> ElementKind {
        match self.data {
            HostData::F32(_) => ElementKind::Float,
            HostData::I64(_) => ElementKind::Int,
        }
    }

    /// Its name, sample shape and element kind.
    pub fn info(&self) -> stoker::data::TensorInfo {
        stoker::data::TensorInfo {
            name: self.name.clone(),
            sample_shape: self.sample_shape().to_vec(),
            kind: self.kind(),
        }
    }

    /// The samples at `rows`, in that order.
    pub fn rows(&self, rows: &[usize]) -> HostTensor {
        let width: usize = self.sample_shape().iter().product();
        let mut shape = self.shape.clone();
        shape[0] = rows.len();
        fn gather<T: Copy>(values: &[T], rows: &[usize], width: usize) -> Vec<T> {
            let mut out = Vec::with_capacity(rows.len() * width);
            for &row in rows {
                out.extend_from_slice(&values[row * width..(row + 1) * width]);
            }
            out
        }
        let data = match &self.data {
            HostData::F32(v) => HostData::F32(gather(v, rows, width)),
            HostData::I64(v) => HostData::I64(gather(v, rows, width)),
        };
        HostTensor {
            name: self.name.clone(),
            shape,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_gathers_whole_samples() {
        let t = HostTensor::f32("x", vec![3, 2], vec![0., 1., 2., 3., 4., 5.]);
        let picked = t.rows(&[2, 0]);
        assert_eq!(picked.shape, vec![2, 2]);
        assert_eq!(picked.data, HostData::F32(vec![4., 5., 0., 1.]));
        assert_eq!(t.sample_shape(), &[2]);
    }
}
