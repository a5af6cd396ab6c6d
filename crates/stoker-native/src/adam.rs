//! Adam's update as PyTorch's single-tensor loop runs it: seven in-place LibTorch calls.
//!
//! The same update in Burn tensor ops takes about 14 operations per parameter, each through
//! Burn's dispatch (docs/performance.md: 2775 against PyTorch's 2028 µs per step over the 41
//! tensors of the decoder workload).

// burn-tch marks its types deprecated in favour of CubeCL backends; LibTorch is stoker's backend.
#![allow(deprecated)]

use burn::backend::libtorch::TchTensor;
use burn::tensor::Tensor;

use super::dispatch::{from_plain, plain};

/// The hyperparameters of one Adam or AdamW step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// The learning rate of this step.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Denominator term.
    pub eps: f64,
    /// Weight decay: an L2 penalty, or decoupled (AdamW).
    pub weight_decay: f64,
    /// AdamW's decoupled weight decay.
    pub decoupled: bool,
    /// The step number, from 1.
    pub step: u64,
}

/// A parameter's Adam state: first and second moments, and AMSGrad's running maximum.
pub struct AdamMoments<const D: usize> {
    /// The first moment (`exp_avg`).
    pub m: Tensor<D>,
    /// The second moment (`exp_avg_sq`).
    pub v: Tensor<D>,
    /// The maximum of the second moment (`max_exp_avg_sq`), with AMSGrad.
    pub max_v: Option<Tensor<D>>,
}

/// The inputs of an [`adam`] step it handed back: not LibTorch tensors outside autodiff.
pub struct AdamInputs<const D: usize> {
    /// The parameter.
    pub param: Tensor<D>,
    /// Its gradient.
    pub grad: Tensor<D>,
    /// Its moments, `None` before the first step.
    pub moments: Option<AdamMoments<D>>,
}

/// One Adam step on LibTorch tensors, as `torch.optim.Adam(W)`'s single-tensor loop computes it
/// (`lerp_`, `mul_`, `addcmul_`, `sqrt`, `div`, `add_`, `addcdiv_`; LibTorch's C API has no
/// `value` argument for `addcmul_` and `addcdiv_`, so the scale multiplies their first factor
/// first, as their kernels do). The parameter and moments are updated in place when nothing
/// else holds them.
///
/// `moments` is `None` at the first step: the moments start at zero, as in PyTorch. Returns
/// the inputs unchanged (`Err`) when a tensor is not a LibTorch tensor outside autodiff, for
/// the caller's Burn implementation.
pub fn adam<const D: usize>(
    hp: &AdamStep,
    param: Tensor<D>,
    grad: Tensor<D>,
    moments: Option<AdamMoments<D>>,
    amsgrad: bool,
) -> Result<(Tensor<D>, AdamMoments<D>), Box<AdamInputs<D>>> {
    // LibTorch's in-place calls neither promote types nor move devices: all alike, or Burn.
    let alike = |t: &Tensor<D>| {
        is_libtorch(t) && t.dtype() == param.dtype() && t.device() == param.device()
    };
    let routable = alike(&param)
        && alike(&grad)
        && moments.as_ref().is_none_or(|moments| {
            alike(&moments.m)
                && alike(&moments.v)
                && moments.max_v.as_ref().is_none_or(alike)
                && moments.max_v.is_some() == amsgrad
        });
    if !routable {
        return Err(Box::new(AdamInputs {
            param,
            grad,
            moments,
        }));
    }
    #[cfg(test)]
    super::count_native_run();
    let (param, grad) = (writable(param), take(grad));
    let zeros = || TchTensor::new(param.tensor.zeros_like());
    let (mut m, mut v, mut max_v) = match moments {
        Some(moments) => (
            writable(moments.m),
            writable(moments.v),
            moments.max_v.map(writable),
        ),
        None => (zeros(), zeros(), amsgrad.then(zeros)),
    };
    let mut param = param;
    tch::no_grad(|| {
        let mut grad = grad.tensor.shallow_clone();
        if hp.weight_decay != 0.0 {
            if hp.decoupled {
                let _ = param.tensor.g_mul_scalar_(1.0 - hp.lr * hp.weight_decay);
            } else {
                grad = grad.g_add(&(&param.tensor * hp.weight_decay));
            }
        }
        let _ = m.tensor.lerp_(&grad, 1.0 - hp.beta1);
        let _ = v.tensor.g_mul_scalar_(hp.beta2);
        let _ = v.tensor.addcmul_(&(&grad * (1.0 - hp.beta2)), &grad);
        let step = hp.step as i32;
        let bias_correction1 = 1.0 - hp.beta1.powi(step);
        let bias_correction2_sqrt = (1.0 - hp.beta2.powi(step)).sqrt();
        let second = match max_v.as_mut() {
            Some(max_v) => {
                let _ = max_v.tensor.maximum_out(&max_v.tensor, &v.tensor);
                &max_v.tensor
            }
            None => &v.tensor,
        };
        let mut denom = second.sqrt() / bias_correction2_sqrt;
        let _ = denom.g_add_scalar_(hp.eps);
        let step_size = hp.lr / bias_correction1;
        let _ = param.tensor.addcdiv_(&(&m.tensor * (-step_size)), &denom);
    });
    let moments = AdamMoments {
        m: from_plain(m),
        v: from_plain(v),
        max_v: max_v.map(from_plain),
    };
    Ok((from_plain(param), moments))
}

/// Whether `tensor` is a LibTorch tensor outside autodiff.
fn is_libtorch<const D: usize>(tensor: &Tensor<D>) -> bool {
    plain(tensor.clone().into_dispatch()).is_some()
}

/// The tensor itself when only this handle holds its storage, or a copy to write into (of a
/// tensor [`is_libtorch`] accepted).
fn writable<const D: usize>(tensor: Tensor<D>) -> TchTensor {
    let tensor = take(tensor);
    if tensor.can_mut() {
        tensor
    } else {
        TchTensor::new(tensor.tensor.copy())
    }
}

/// The LibTorch tensor of a tensor [`is_libtorch`] accepted.
fn take<const D: usize>(tensor: Tensor<D>) -> TchTensor {
    plain(tensor.into_dispatch()).expect("checked by is_libtorch")
}
