//! The update rules, written as PyTorch's single-tensor implementations compute them (same
//! order of operations), and AdaBound as its authors' reference code does.

use stoker::burn::optim::Optimizer;
use stoker::burn::tensor::{Device, Tensor};
use stoker::native::{self, AdamMoments, AdamStep};

use crate::state::Slots;

/// `a + weight * (b - a)`, as `torch.lerp` computes it for weights below one half.
fn lerp<const D: usize>(a: Tensor<D>, b: Tensor<D>, weight: f64) -> Tensor<D> {
    if weight < 0.5 {
        a.clone() + (b - a).mul_scalar(weight)
    } else {
        b.clone() - (b - a).mul_scalar(1.0 - weight)
    }
}

/// `torch.optim.SGD`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sgd {
    /// Momentum factor.
    pub momentum: f64,
    /// Dampening of the momentum.
    pub dampening: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 penalty.
    pub weight_decay: f64,
    /// Multiplier of the learning rate (parameter groups).
    pub lr_scale: f64,
}

impl Optimizer for Sgd {
    type State<const D: usize> = Slots<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        param: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Slots<D>>,
    ) -> (Tensor<D>, Option<Slots<D>>) {
        let lr = lr * self.lr_scale;
        let mut state = state.unwrap_or_default();
        let mut grad = grad;
        if self.weight_decay != 0.0 {
            grad = grad + param.clone().mul_scalar(self.weight_decay);
        }
        if self.momentum != 0.0 {
            let buf = match state.a.take() {
                None => grad.clone(),
                Some(buf) => {
                    buf.mul_scalar(self.momentum) + grad.clone().mul_scalar(1.0 - self.dampening)
                }
            };
            grad = if self.nesterov {
                grad + buf.clone().mul_scalar(self.momentum)
            } else {
                buf.clone()
            };
            state.a = Some(buf);
        }
        state.step += 1;
        (param - grad.mul_scalar(lr), Some(state))
    }

    fn to_device<const D: usize>(state: Slots<D>, device: &Device) -> Slots<D> {
        state.to_device(device)
    }
}

/// `torch.optim.Adam` (L2 weight decay) and `torch.optim.AdamW` (decoupled weight decay).
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    /// Moment decay rates.
    pub betas: [f64; 2],
    /// Denominator term.
    pub eps: f64,
    /// Weight decay: an L2 penalty (Adam) or decoupled (AdamW).
    pub weight_decay: f64,
    /// AdamW's decoupled weight decay.
    pub decoupled: bool,
    /// The AMSGrad variant.
    pub amsgrad: bool,
    /// Multiplier of the learning rate (parameter groups).
    pub lr_scale: f64,
}

impl Optimizer for Adam {
    type State<const D: usize> = Slots<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        param: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Slots<D>>,
    ) -> (Tensor<D>, Option<Slots<D>>) {
        let lr = lr * self.lr_scale;
        let [beta1, beta2] = self.betas;
        let mut state = state.unwrap_or_default();
        state.step += 1;
        let hp = AdamStep {
            lr,
            beta1,
            beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            decoupled: self.decoupled,
            step: state.step,
        };
        let moments = match (state.a.take(), state.b.take()) {
            (Some(m), Some(v)) => Some(AdamMoments {
                m,
                v,
                max_v: state.c.take(),
            }),
            _ => None,
        };
        // On LibTorch: PyTorch's in-place calls. Elsewhere: the same formulas in Burn ops.
        let (param, grad, moments) = match native::adam(&hp, param, grad, moments, self.amsgrad) {
            Ok((param, moments)) => {
                state.a = Some(moments.m);
                state.b = Some(moments.v);
                state.c = moments.max_v;
                return (param, Some(state));
            }
            Err(inputs) => (inputs.param, inputs.grad, inputs.moments),
        };
        let (m, v, max_v) = match moments {
            Some(moments) => (Some(moments.m), Some(moments.v), moments.max_v),
            None => (None, None, None),
        };
        let mut param = param;
        let mut grad = grad;
        if self.weight_decay != 0.0 {
            if self.decoupled {
                param = param.mul_scalar(1.0 - lr * self.weight_decay);
            } else {
                grad = grad + param.clone().mul_scalar(self.weight_decay);
            }
        }
        let m = match m {
            None => grad.clone().mul_scalar(1.0 - beta1),
            Some(m) => lerp(m, grad.clone(), 1.0 - beta1),
        };
        let squared = grad.clone() * grad;
        let v = match v {
            None => squared.mul_scalar(1.0 - beta2),
            Some(v) => v.mul_scalar(beta2) + squared.mul_scalar(1.0 - beta2),
        };
        let step = state.step as i32;
        let bias_correction1 = 1.0 - beta1.powi(step);
        let bias_correction2_sqrt = (1.0 - beta2.powi(step)).sqrt();
        let step_size = lr / bias_correction1;
        let second = if self.amsgrad {
            let max = match max_v {
                None => v.clone(),
                Some(max) => max.max_pair(v.clone()),
            };
            state.c = Some(max.clone());
            max
        } else {
            v.clone()
        };
        let denom = second
            .sqrt()
            .div_scalar(bias_correction2_sqrt)
            .add_scalar(self.eps);
        let param = param - m.clone().div(denom).mul_scalar(step_size);
        state.a = Some(m);
        state.b = Some(v);
        (param, Some(state))
    }

    fn to_device<const D: usize>(state: Slots<D>, device: &Device) -> Slots<D> {
        state.to_device(device)
    }
}

/// `torch.optim.RMSprop`.
#[derive(Debug, Clone, PartialEq)]
pub struct RmsProp {
    /// Smoothing constant of the squared-gradient average.
    pub alpha: f64,
    /// Denominator term.
    pub eps: f64,
    /// L2 penalty.
    pub weight_decay: f64,
    /// Momentum factor.
    pub momentum: f64,
    /// Normalize by the gradient's variance estimate instead of its second moment.
    pub centered: bool,
    /// Multiplier of the learning rate (parameter groups).
    pub lr_scale: f64,
}

impl Optimizer for RmsProp {
    type State<const D: usize> = Slots<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        param: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Slots<D>>,
    ) -> (Tensor<D>, Option<Slots<D>>) {
        let lr = lr * self.lr_scale;
        let mut state = state.unwrap_or_default();
        state.step += 1;
        let mut grad = grad;
        if self.weight_decay != 0.0 {
            grad = grad + param.clone().mul_scalar(self.weight_decay);
        }
        let squared = grad.clone() * grad.clone();
        let square_avg = match state.a.take() {
            None => squared.mul_scalar(1.0 - self.alpha),
            Some(s) => s.mul_scalar(self.alpha) + squared.mul_scalar(1.0 - self.alpha),
        };
        let avg = if self.centered {
            let grad_avg = match state.b.take() {
                None => grad.clone().mul_scalar(1.0 - self.alpha),
                Some(g) => lerp(g, grad.clone(), 1.0 - self.alpha),
            };
            let avg = (square_avg.clone() - grad_avg.clone() * grad_avg.clone()).sqrt();
            state.b = Some(grad_avg);
            avg
        } else {
            square_avg.clone().sqrt()
        }
        .add_scalar(self.eps);
        state.a = Some(square_avg);
        let param = if self.momentum > 0.0 {
            let update = grad.div(avg);
            let buf = match state.c.take() {
                None => update,
                Some(buf) => buf.mul_scalar(self.momentum) + update,
            };
            state.c = Some(buf.clone());
            param - buf.mul_scalar(lr)
        } else {
            param - grad.div(avg).mul_scalar(lr)
        };
        (param, Some(state))
    }

    fn to_device<const D: usize>(state: Slots<D>, device: &Device) -> Slots<D> {
        state.to_device(device)
    }
}

/// `torch.optim.Adagrad`.
#[derive(Debug, Clone, PartialEq)]
pub struct Adagrad {
    /// Learning-rate decay per step.
    pub lr_decay: f64,
    /// L2 penalty.
    pub weight_decay: f64,
    /// Starting value of the squared-gradient sum.
    pub initial_accumulator_value: f64,
    /// Denominator term.
    pub eps: f64,
    /// Multiplier of the learning rate (parameter groups).
    pub lr_scale: f64,
}

impl Optimizer for Adagrad {
    type State<const D: usize> = Slots<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        param: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Slots<D>>,
    ) -> (Tensor<D>, Option<Slots<D>>) {
        let lr = lr * self.lr_scale;
        let mut state = state.unwrap_or_default();
        state.step += 1;
        let mut grad = grad;
        if self.weight_decay != 0.0 {
            grad = grad + param.clone().mul_scalar(self.weight_decay);
        }
        let clr = lr / (1.0 + (state.step - 1) as f64 * self.lr_decay);
        let sum = match state.a.take() {
            None => param
                .zeros_like()
                .add_scalar(self.initial_accumulator_value),
            Some(sum) => sum,
        } + grad.clone() * grad.clone();
        let std = sum.clone().sqrt().add_scalar(self.eps);
        state.a = Some(sum);
        (param - grad.div(std).mul_scalar(clr), Some(state))
    }

    fn to_device<const D: usize>(state: Slots<D>, device: &Device) -> Slots<D> {
        state.to_device(device)
    }
}

/// AdaBound (Luo et al., 2019), as the authors' reference implementation: Adam whose per-value
/// step size is clipped into bounds that converge to `final_lr` (scaled like the learning rate).
#[derive(Debug, Clone, PartialEq)]
pub struct AdaBound {
    /// Moment decay rates.
    pub betas: [f64; 2],
    /// The learning rate the bounds converge to (at the base learning rate).
    pub final_lr: f64,
    /// Convergence speed of the bounds.
    pub gamma: f64,
    /// Denominator term.
    pub eps: f64,
    /// L2 penalty.
    pub weight_decay: f64,
    /// The AMSBound variant.
    pub amsbound: bool,
    /// The optimizer's initial learning rate (the bounds follow a scheduler's changes).
    pub base_lr: f64,
    /// Multiplier of the learning rate (parameter groups).
    pub lr_scale: f64,
}

impl Optimizer for AdaBound {
    type State<const D: usize> = Slots<D>;

    fn step<const D: usize>(
        &self,
        lr: f64,
        param: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Slots<D>>,
    ) -> (Tensor<D>, Option<Slots<D>>) {
        let lr = lr * self.lr_scale;
        let base_lr = self.base_lr * self.lr_scale;
        let [beta1, beta2] = self.betas;
        let mut state = state.unwrap_or_default();
        state.step += 1;
        let mut grad = grad;
        if self.weight_decay != 0.0 {
            grad = grad + param.clone().mul_scalar(self.weight_decay);
        }
        let m = match state.a.take() {
            None => grad.clone().mul_scalar(1.0 - beta1),
            Some(m) => m.mul_scalar(beta1) + grad.clone().mul_scalar(1.0 - beta1),
        };
        let squared = grad.clone() * grad;
        let v = match state.b.take() {
            None => squared.mul_scalar(1.0 - beta2),
            Some(v) => v.mul_scalar(beta2) + squared.mul_scalar(1.0 - beta2),
        };
        let second = if self.amsbound {
            let max = match state.c.take() {
                None => v.clone(),
                Some(max) => max.max_pair(v.clone()),
            };
            state.c = Some(max.clone());
            max
        } else {
            v.clone()
        };
        let denom = second.sqrt().add_scalar(self.eps);
        let step = state.step as i32;
        let step_size = lr * (1.0 - beta2.powi(step)).sqrt() / (1.0 - beta1.powi(step));
        let final_lr = self.final_lr * lr / base_lr;
        let t = state.step as f64;
        let lower = final_lr * (1.0 - 1.0 / (self.gamma * t + 1.0));
        let upper = final_lr * (1.0 + 1.0 / (self.gamma * t));
        // torch.full_like(denom, step_size).div_(denom).clamp_(lower, upper).mul_(exp_avg)
        let bounded = denom
            .ones_like()
            .mul_scalar(step_size)
            .div(denom)
            .clamp(lower, upper)
            * m.clone();
        state.a = Some(m);
        state.b = Some(v);
        (param - bounded, Some(state))
    }

    fn to_device<const D: usize>(state: Slots<D>, device: &Device) -> Slots<D> {
        state.to_device(device)
    }
}
