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
    use crate::test_model::{gradients, values};

    #[test]
    fn norm_clipping_matches_torch_clip_grad_norm() {
        // torch.nn.utils.clip_grad_norm_ on these gradients with max_norm 1.0: the total norm is
        // sqrt(1 + 4 + 9 + 16 + 25 + 36) = sqrt(91) and every value is scaled by 1 / (sqrt(91) + 1e-6).
        let (model, grads) = gradients([1.0, 2.0, 3.0, 4.0]);
        let (clipped, total) = clip_by_norm(model.as_ref(), grads, 1.0);
        let total = total.unwrap().into_scalar::<f64>();
        assert!((total - 91f64.sqrt()).abs() < 1e-5, "{total}");
        let scale = 1.0 / (91f64.sqrt() + 1e-6);
        let a = values(model.as_ref(), &clipped, "a.weight");
        for (v, e) in a.iter().zip([1.0, 2.0, 3.0, 4.0]) {
            assert!((*v as f64 - e * scale).abs() < 1e-6, "{v} vs {}", e * scale);
        }
        // Below the limit nothing changes (the coefficient is clamped to 1).
        let (model, grads) = gradients([1.0, 2.0, 3.0, 4.0]);
        let (kept, _) = clip_by_norm(model.as_ref(), grads, 100.0);
        assert_eq!(values(model.as_ref(), &kept, "b.weight"), vec![5.0, 6.0]);
    }

    #[test]
    fn value_clipping_clamps_each_value() {
        let (model, grads) = gradients([1.0, 2.0, 3.0, 4.0]);
        let clipped = clip_by_value(model.as_ref(), grads, 2.5);
        assert_eq!(
            values(model.as_ref(), &clipped, "a.weight"),
            vec![1.0, 2.0, 2.5, 2.5]
        );
        assert_eq!(values(model.as_ref(), &clipped, "b.weight"), vec![2.5, 2.5]);
    }
}
