//! A two-layer model with hand-set gradients, for the unit tests of clipping and anomaly checks.

use stoker::burn;
use stoker::burn::module::Module;
use stoker::burn::nn::{Linear, LinearConfig};
use stoker::burn::optim::GradientsParams;
use stoker::burn::tensor::{Device, Tensor, TensorData};
use stoker::model::{DynModel, Model, boxed};
use stoker::prelude::{Batch, Output};

#[derive(Module, Debug)]
struct Two {
    a: Linear,
    b: Linear,
}

impl Model for Two {
    fn forward(&self, _batch: &Batch) -> stoker::Result<Output> {
        Ok(Output::output())
    }
}

/// A model `a: Linear(2, 2), b: Linear(2, 1)` and gradients a.weight = `a` (row-major 2x2),
/// a.bias = [0, 0], b.weight = [[5], [6]], b.bias = [0].
pub fn gradients(a: [f32; 4]) -> (Box<dyn DynModel>, GradientsParams) {
    let device = Device::flex().autodiff();
    let model = boxed(Two {
        a: LinearConfig::new(2, 2).init(&device),
        b: LinearConfig::new(2, 1).init(&device),
    });
    let ids = model.param_ids();
    let plain = Device::flex();
    let mut grads = GradientsParams::new();
    grads.register(
        ids["a.weight"].into(),
        Tensor::<2>::from_data(TensorData::new(a.to_vec(), [2, 2]), &plain),
    );
    grads.register(
        ids["a.bias"].into(),
        Tensor::<1>::from_data(TensorData::new(vec![0.0f32, 0.0], [2]), &plain),
    );
    grads.register(
        ids["b.weight"].into(),
        Tensor::<2>::from_data(TensorData::new(vec![5.0f32, 6.0], [2, 1]), &plain),
    );
    grads.register(
        ids["b.bias"].into(),
        Tensor::<1>::from_data(TensorData::new(vec![0.0f32], [1]), &plain),
    );
    (model, grads)
}

/// The gradient values of parameter `path`.
pub fn values(model: &dyn DynModel, grads: &GradientsParams, path: &str) -> Vec<f32> {
    let flat = model.gradients_flat(grads);
    let g = flat.into_iter().find(|(p, _)| p == path).unwrap().1;
    g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}
