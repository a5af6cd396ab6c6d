//! Gradient clipping over the whole model, on the device.

use stoker::burn::optim::GradientsParams;
use stoker::burn::tensor::Tensor;
use stoker::model::DynModel;

/// `torch.nn.utils.clip_grad_norm_(parameters, max_norm)`: the global L2 norm is the norm of the
/// per-parameter norms; every gradient is multiplied by `min(1, max_norm / (norm + 1e-6))`.
/// Nothing is read back to the host. Returns the clipped gradients and the global norm.
pub fn clip_by_norm(
    model: &dyn DynModel,
    grads: GradientsParams,
    max_norm: f64,
) -> (GradientsParams, Option<Tensor<1>>) {
    let norms: Vec<Tensor<1>> = model
        .gradients_flat(&grads)
        .into_iter()
        .map(|(_, g)| g.square().sum().sqrt())
        .collect();
    if norms.is_empty() {
        return (grads, None);
    }
    let total = Tensor::cat(norms, 0).square().sum().sqrt();
    let coef = total
        .clone()
        .add_scalar(1e-6)
        .recip()
        .mul_scalar(max_norm)
        .clamp_max(1.0);
    let clipped = model.map_gradients(grads, &mut |_, g| g * coef.clone());
    (clipped, Some(total))
}

/// `torch.nn.utils.clip_grad_value_(parameters, clip_value)`: every gradient value clamped to
/// `[-clip_value, clip_value]`.
pub fn clip_by_value(
    model: &dyn DynModel,
    grads: GradientsParams,
    clip_value: f64,
) -> GradientsParams {
    model.map_gradients(grads, &mut |_, g| g.clamp(-clip_value, clip_value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stoker::burn;
    use stoker::burn::module::Module;
    use stoker::burn::nn::{Linear, LinearConfig};
    use stoker::burn::tensor::{Device, TensorData};
    use stoker::model::{Model, boxed};
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

    /// Gradients a.weight = [[1, 2], [3, 4]], a.bias = [0, 0], b.weight = [[5], [6]], b.bias = [0].
    fn setup() -> (Box<dyn DynModel>, GradientsParams) {
        let device = Device::flex().autodiff();
        let model = boxed(Two {
            a: LinearConfig::new(2, 2).init(&device),
            b: LinearConfig::new(2, 1).init(&device),
        });
        let ids = model.param_ids();
        let mut grads = GradientsParams::new();
        let tensor = |values: Vec<f32>, shape: [usize; 2]| {
            Tensor::<2>::from_data(TensorData::new(values, shape), &Device::flex())
        };
        grads.register(
            ids["a.weight"].into(),
            tensor(vec![1.0, 2.0, 3.0, 4.0], [2, 2]),
        );
        grads.register(
            ids["a.bias"].into(),
            Tensor::<1>::from_data(TensorData::new(vec![0.0f32, 0.0], [2]), &Device::flex()),
        );
        grads.register(ids["b.weight"].into(), tensor(vec![5.0, 6.0], [2, 1]));
        grads.register(
            ids["b.bias"].into(),
            Tensor::<1>::from_data(TensorData::new(vec![0.0f32], [1]), &Device::flex()),
        );
        (model, grads)
    }

    fn values(model: &dyn DynModel, grads: &GradientsParams, path: &str) -> Vec<f32> {
        let flat = model.gradients_flat(grads);
        let g = flat.into_iter().find(|(p, _)| p == path).unwrap().1;
        g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn norm_clipping_matches_torch_clip_grad_norm() {
        // torch.nn.utils.clip_grad_norm_ on these gradients with max_norm 1.0: the total norm is
        // sqrt(1 + 4 + 9 + 16 + 25 + 36) = sqrt(91) and every value is scaled by 1 / (sqrt(91) + 1e-6).
        let (model, grads) = setup();
        let (clipped, total) = clip_by_norm(model.as_ref(), grads, 1.0);
        let total = total.unwrap().into_scalar::<f64>();
        assert!((total - 91f64.sqrt()).abs() < 1e-5, "{total}");
        let scale = 1.0 / (91f64.sqrt() + 1e-6);
        let a = values(model.as_ref(), &clipped, "a.weight");
        for (v, e) in a.iter().zip([1.0, 2.0, 3.0, 4.0]) {
            assert!((*v as f64 - e * scale).abs() < 1e-6, "{v} vs {}", e * scale);
        }
        // Below the limit nothing changes (the coefficient is clamped to 1).
        let (model, grads) = setup();
        let (kept, _) = clip_by_norm(model.as_ref(), grads, 100.0);
        assert_eq!(values(model.as_ref(), &kept, "b.weight"), vec![5.0, 6.0]);
    }

    #[test]
    fn value_clipping_clamps_each_value() {
        let (model, grads) = setup();
        let clipped = clip_by_value(model.as_ref(), grads, 2.5);
        assert_eq!(
            values(model.as_ref(), &clipped, "a.weight"),
            vec![1.0, 2.0, 2.5, 2.5]
        );
        assert_eq!(values(model.as_ref(), &clipped, "b.weight"), vec![2.5, 2.5]);
    }
}
