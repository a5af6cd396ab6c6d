//! Batches and model outputs: named tensors with typed getters.
//!
//! Data, model, loss and metric plugins agree on tensor *names*, which the experiment file can
//! set, rather than on Rust types: a data module produces `{x, y}`, a model reads `x` and adds
//! `pred`, a loss reads `pred` and `y`.

use burn::tensor::kind::BridgeTensor;
use burn::tensor::{Int, Tensor};

use crate::error::BatchError;

/// Named tensors of one batch or of one forward pass, in insertion order.
#[derive(Debug, Clone)]
pub struct TensorMap {
    what: &'static str,
    entries: Vec<(String, BridgeTensor)>,
}

/// The tensors of one batch, as a data module yields them.
pub type Batch = TensorMap;

/// The tensors a model's forward pass returns.
pub type Output = TensorMap;

fn kind_name(tensor: &BridgeTensor) -> &'static str {
    if tensor.is_int() {
        "int"
    } else if tensor.is_bool() {
        "bool"
    } else {
        "float"
    }
}

impl TensorMap {
    /// An empty batch.
    pub fn batch() -> Self {
        TensorMap {
            what: "batch",
            entries: Vec::new(),
        }
    }

    /// An empty model output.
    pub fn output() -> Self {
        TensorMap {
            what: "model output",
            entries: Vec::new(),
        }
    }

    /// Adds (or replaces) a float tensor.
    pub fn insert_float<const D: usize>(&mut self, name: impl Into<String>, tensor: Tensor<D>) {
        self.insert_bridge(name.into(), tensor.into_bridge());
    }

    /// Adds (or replaces) an int tensor.
    pub fn insert_int<const D: usize>(&mut self, name: impl Into<String>, tensor: Tensor<D, Int>) {
        self.insert_bridge(name.into(), tensor.into_bridge());
    }

    /// Adds a float tensor, builder style.
    pub fn with_float<const D: usize>(
        mut self,
        name: impl Into<String>,
        tensor: Tensor<D>,
    ) -> Self {
        self.insert_float(name, tensor);
        self
    }

    /// Adds (or replaces) a tensor of any kind and rank.
    pub fn insert_bridge(&mut self, name: String, tensor: BridgeTensor) {
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = tensor,
            None => self.entries.push((name, tensor)),
        }
    }

    fn get(&self, name: &str) -> Result<&BridgeTensor, BatchError> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| BatchError::Missing {
                name: name.to_string(),
                what: self.what,
                available: self.names().collect::<Vec<_>>().join(", "),
            })
    }

    fn checked(
        &self,
        name: &str,
        rank: usize,
        kind: &'static str,
    ) -> Result<BridgeTensor, BatchError> {
        let tensor = self.get(name)?;
        let actual = kind_name(tensor);
        if actual != kind {
            return Err(BatchError::Kind {
                name: name.to_string(),
                expected: kind,
                actual,
            });
        }
        if tensor.rank() != rank {
            return Err(BatchError::Rank {
                name: name.to_string(),
                expected: rank,
                actual: tensor.rank(),
                shape: tensor.shape().to_vec(),
            });
        }
        Ok(tensor.clone())
    }

    /// The float tensor `name`, which must have rank `D`.
    pub fn float<const D: usize>(&self, name: &str) -> Result<Tensor<D>, BatchError> {
        self.checked(name, D, "float").map(Tensor::from_bridge)
    }

    /// The int tensor `name`, which must have rank `D`.
    pub fn int<const D: usize>(&self, name: &str) -> Result<Tensor<D, Int>, BatchError> {
        self.checked(name, D, "int").map(Tensor::from_bridge)
    }

    /// The float tensor `name` flattened to `[batch, features]`, whatever its rank (>= 1).
    pub fn float_flat(&self, name: &str) -> Result<Tensor<2>, BatchError> {
        let tensor = self.get(name)?;
        let shape = self.shape(name)?;
        let batch = shape.first().copied().unwrap_or(1);
        let features: usize = shape.iter().skip(1).product();
        macro_rules! flat {
            ($($rank:literal),*) => {
                match tensor.rank() {
                    $($rank => self.float::<$rank>(name)?.reshape([batch, features]),)*
                    _ => return Err(BatchError::Rank {
                        name: name.to_string(), expected: 2, actual: tensor.rank(), shape,
                    }),
                }
            };
        }
        Ok(flat!(1, 2, 3, 4, 5, 6))
    }

    /// The int tensor `name` flattened to `[batch, values]`, whatever its rank (>= 1).
    pub fn int_flat(&self, name: &str) -> Result<Tensor<2, Int>, BatchError> {
        let tensor = self.get(name)?;
        let shape = self.shape(name)?;
        let batch = shape.first().copied().unwrap_or(1);
        let values: usize = shape.iter().skip(1).product();
        macro_rules! flat {
            ($($rank:literal),*) => {
                match tensor.rank() {
                    $($rank => self.int::<$rank>(name)?.reshape([batch, values]),)*
                    _ => return Err(BatchError::Rank {
                        name: name.to_string(), expected: 2, actual: tensor.rank(), shape,
                    }),
                }
            };
        }
        Ok(flat!(1, 2, 3, 4, 5, 6))
    }

    /// Tensor `name` whatever its kind and rank (to copy it into another map as it is).
    pub fn bridge(&self, name: &str) -> Result<BridgeTensor, BatchError> {
        self.get(name).cloned()
    }

    /// Whether tensor `name` holds integers.
    pub fn is_int(&self, name: &str) -> Result<bool, BatchError> {
        Ok(self.get(name)?.is_int())
    }

    /// The shape of tensor `name`.
    pub fn shape(&self, name: &str) -> Result<Vec<usize>, BatchError> {
        Ok(self.get(name)?.shape().to_vec())
    }

    /// Whether a tensor named `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|(n, _)| n == name)
    }

    /// The names, in insertion order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// The tensors with their names, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &BridgeTensor)> {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The number of samples: the leading dimension of the first tensor (0 when empty).
    pub fn batch_size(&self) -> usize {
        self.entries
            .first()
            .and_then(|(_, t)| t.shape().to_vec().first().copied())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn typed_getters_check_name_kind_and_rank() {
        let device = Device::flex();
        let x = Tensor::<3>::from_data(TensorData::new(vec![0f32; 24], [2, 3, 4]), &device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 0], [2]), &device);
        let mut batch = TensorMap::batch();
        batch.insert_float("x", x);
        batch.insert_int("y", y);

        assert_eq!(batch.batch_size(), 2);
        assert_eq!(batch.float::<3>("x").unwrap().dims(), [2, 3, 4]);
        assert_eq!(batch.float_flat("x").unwrap().dims(), [2, 12]);
        assert_eq!(batch.int::<1>("y").unwrap().dims(), [2]);
        assert!(matches!(
            batch.float::<2>("x"),
            Err(BatchError::Rank { actual: 3, .. })
        ));
        assert!(matches!(
            batch.float::<1>("y"),
            Err(BatchError::Kind { actual: "int", .. })
        ));
        let missing = batch.float::<2>("z").unwrap_err().to_string();
        assert!(
            missing.contains("no tensor named `z` in the batch (it has: x, y)"),
            "{missing}"
        );
    }
}
