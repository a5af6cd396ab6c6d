//! The native ops against hand-derived values and against Burn's own ops.

#![allow(deprecated)] // Device::libtorch: burn-tch is deprecated upstream but is stoker's backend

use super::native_runs;
use super::*;
use burn::module::Param;
use burn::nn::attention::{MhaInput, MultiHeadAttentionConfig, generate_autoregressive_mask};
use burn::nn::{BatchNormConfig, LayerNormConfig};
use burn::tensor::{Device, Distribution, Tensor, activation};

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn relu_and_its_gradient_by_hand() {
    for device in [Device::libtorch().autodiff(), Device::flex().autodiff()] {
        let x = Tensor::<1>::from_floats([-2.0, -0.5, 0.0, 0.5, 3.0], &device).require_grad();
        let before = native_runs();
        let y = relu(x.clone());
        let native = usize::from(device == Device::libtorch().autodiff());
        assert_eq!(
            native_runs(),
            before + native,
            "{device:?}: natively on LibTorch only"
        );
        assert_eq!(values(y.clone()), [0.0, 0.0, 0.0, 0.5, 3.0], "{device:?}");
        // d/dx sum(relu(x) * w) = w where x > 0 (PyTorch's convention: 0 at x = 0).
        let w = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0, 5.0], &device);
        let grads = (y * w).sum().backward();
        assert_eq!(
            values(x.grad(&grads).unwrap()),
            [0.0, 0.0, 0.0, 4.0, 5.0],
            "{device:?}"
        );
    }
}

#[test]
fn relu_matches_burns_through_a_graph() {
    let device = Device::libtorch().autodiff();
    let x = Tensor::<3>::random([4, 3, 17], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let w = Tensor::<3>::random([4, 3, 17], Distribution::Normal(0.0, 1.0), &device);
    let run = |f: &dyn Fn(Tensor<3>) -> Tensor<3>| {
        // Used twice, once in place of the other's input: gradients add up through both paths.
        let h = f(x.clone().mul_scalar(2.0));
        let y = f(h.clone() - 0.3) + h;
        let grads = (y.clone() * w.clone()).sum().backward();
        (values(y), values(x.grad(&grads).unwrap()))
    };
    let (y, gx) = run(&|t| relu(t));
    assert_eq!(native_runs(), 2);
    let (y0, gx0) = run(&|t| activation::relu(t));
    assert_eq!(y, y0);
    assert_eq!(gx, gx0);
}

#[test]
fn relu_without_autodiff_is_burns() {
    let device = Device::libtorch();
    let x = Tensor::<2>::random([3, 5], Distribution::Normal(0.0, 1.0), &device);
    assert_eq!(values(relu(x.clone())), values(activation::relu(x)));
    assert_eq!(native_runs(), 0, "nothing to differentiate: Burn's relu");
}

fn device() -> Device {
    Device::libtorch().autodiff()
}

fn random<const D: usize>(shape: [usize; D]) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device())
}

fn assert_close<const D: usize>(what: &str, native: Tensor<D>, burn: Tensor<D>, tolerance: f32) {
    assert_eq!(native.dims(), burn.dims(), "{what}: shapes");
    let native = native.into_data().try_to_vec::<f32>().unwrap();
    let burn = burn.into_data().try_to_vec::<f32>().unwrap();
    let scale = burn.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in native.iter().zip(&burn).enumerate() {
        assert!(
            (a - b).abs() <= tolerance * scale,
            "{what}[{i}]: native {a} against Burn {b}"
        );
    }
}

/// Runs `f` on `x`, backpropagates sum(f(x) * weights) and returns the output and x's gradient;
/// `params` are read after, from the same gradients.
fn run<const D: usize, const E: usize, P>(
    x: &Tensor<D>,
    weights: &Tensor<E>,
    f: impl Fn(Tensor<D>) -> Tensor<E>,
    params: impl Fn(&burn::tensor::Gradients) -> P,
) -> (Tensor<E>, Tensor<D>, P) {
    let x = x.clone().detach().require_grad();
    let y = f(x.clone());
    // Graph bookkeeping only: whether f ran natively is for the caller to check.
    let grads = (y.clone() * weights.clone()).sum().backward();
    let gx = x.grad(&grads).expect("x has a gradient");
    (y.detach(), gx, params(&grads))
}

/// Runs `f`, checking that it took the LibTorch path exactly once.
fn natively<T>(f: impl FnOnce() -> T) -> T {
    let before = native_runs();
    let result = f();
    assert_eq!(native_runs(), before + 1, "ran natively");
    result
}

/// One [`run`]'s output, input gradient and two parameter gradients.
type Run<const D: usize, const E: usize, const P: usize, const Q: usize> =
    (Tensor<E>, Tensor<D>, (Tensor<P>, Tensor<Q>));

/// Compares a native [`run`] with Burn's, each tensor to 1e-5 of its scale.
fn assert_runs_close<const D: usize, const E: usize, const P: usize, const Q: usize>(
    params: [&str; 2],
    native: Run<D, E, P, Q>,
    burn: Run<D, E, P, Q>,
) {
    let (y, gx, (ga, gb)) = native;
    let (y0, gx0, (ga0, gb0)) = burn;
    assert_close("output", y, y0, 1e-5);
    assert_close("x grad", gx, gx0, 1e-5);
    assert_close(params[0], ga, ga0, 1e-5);
    assert_close(params[1], gb, gb0, 1e-5);
}

#[test]
fn batch_norm_matches_burn_with_its_running_statistics() {
    let config = BatchNormConfig::new(3).with_momentum(0.3);
    let (native_norm, burn_norm) = (config.init(&device()), config.init(&device()));
    let x = random([5, 3, 11]).mul_scalar(2.0).add_scalar(0.5);
    let weights = random([5, 3, 11]);
    let grads = |norm: &burn::nn::BatchNorm| {
        let norm = norm.clone();
        move |g: &_| (norm.gamma.grad(g).unwrap(), norm.beta.grad(g).unwrap())
    };
    let native = run(
        &x,
        &weights,
        |x| natively(|| batch_norm(&native_norm, x)),
        grads(&native_norm),
    );
    let burn = run(&x, &weights, |x| burn_norm.forward(x), grads(&burn_norm));
    assert_runs_close(["gamma grad", "beta grad"], native, burn);
    let state = |norm: &burn::nn::BatchNorm| {
        (
            norm.running_mean.value_sync(),
            norm.running_var.value_sync(),
        )
    };
    let ((mean, var), (mean0, var0)) = (state(&native_norm), state(&burn_norm));
    assert_close("running mean", mean, mean0, 1e-6);
    assert_close("running variance", var, var0, 1e-5);
}

#[test]
fn layer_norm_matches_burn() {
    let mut norm = LayerNormConfig::new(6).init(&device());
    norm.gamma = Param::from_tensor(random([6]));
    let x = random([2, 5, 6]);
    let weights = random([2, 5, 6]);
    let grads = |g: &_| {
        (
            norm.gamma.grad(g).unwrap(),
            norm.beta.as_ref().unwrap().grad(g).unwrap(),
        )
    };
    let native = run(
        &x,
        &weights,
        |x| natively(|| layer_norm(&norm, x, 1e-5)),
        grads,
    );
    let burn = run(&x, &weights, |x| norm.forward(x), grads);
    assert_runs_close(["gamma grad", "beta grad"], native, burn);
}

#[test]
fn causal_attention_matches_burn() {
    let mha = MultiHeadAttentionConfig::new(8, 2)
        .with_dropout(0.0)
        .init(&device());
    let x = random([3, 6, 8]);
    let weights = random([3, 6, 8]);
    let grads = |g: &_| {
        (
            mha.query.weight.grad(g).unwrap(),
            mha.value.weight.grad(g).unwrap(),
        )
    };
    let masked = |x: Tensor<3>| {
        let mask = generate_autoregressive_mask(3, 6, &x.device());
        mha.forward(MhaInput::self_attn(x).mask_attn(mask)).context
    };
    let native = run(
        &x,
        &weights,
        |x| natively(|| causal_self_attention(&mha, x)),
        grads,
    );
    let burn = run(&x, &weights, masked, grads);
    assert_runs_close(["query weight grad", "value weight grad"], native, burn);
}

#[test]
fn islands_leave_other_backends_to_burn() {
    let device = Device::flex().autodiff();
    let norm = LayerNormConfig::new(5).init(&device);
    let x = Tensor::<3>::random([2, 3, 5], Distribution::Default, &device);
    assert!(island::<2, 3>([&x, &norm.gamma.val()], |_| unreachable!()).is_none());
    assert_close(
        "output",
        layer_norm(&norm, x.clone(), 1e-5),
        norm.forward(x),
        1e-6,
    );
    assert_eq!(native_runs(), 0);
}

#[test]
fn islands_run_without_autodiff() {
    let norm = LayerNormConfig::new(6).init(&Device::libtorch());
    let x = Tensor::<3>::random([2, 2, 6], Distribution::Default, &Device::libtorch());
    assert_close(
        "output",
        layer_norm(&norm, x.clone(), 1e-5),
        norm.forward(x),
        1e-5,
    );
    assert_eq!(native_runs(), 1);
}

#[test]
fn an_island_differentiates_by_libtorchs_autograd() {
    // y = x * w + x^2, backpropagated with weights r: dx = r (w + 2x), dw = r x.
    let x = Tensor::<1>::from_floats([1.0, -2.0, 3.0], &device()).require_grad();
    let w = Tensor::<1>::from_floats([0.5, 4.0, -1.0], &device()).require_grad();
    let r = Tensor::<1>::from_floats([1.0, 2.0, -3.0], &device());
    let (y, aux) = island::<2, 1>([&x, &w], |[x, w]| vec![x * w + x.square(), x.sum(None)])
        .expect("LibTorch tensors enter the island");
    assert_eq!(aux[0].double_value(&[]), 2.0, "auxiliary outputs come back");
    assert_close(
        "y",
        y.clone(),
        Tensor::from_floats([1.5, -4.0, 6.0], &device()),
        1e-6,
    );
    let grads = (y * r).sum().backward();
    let dx = Tensor::from_floats([2.5, 0.0, -15.0], &device());
    let dw = Tensor::from_floats([1.0, -4.0, -9.0], &device());
    assert_close("dx", x.grad(&grads).unwrap(), dx, 1e-6);
    assert_close("dw", w.grad(&grads).unwrap(), dw, 1e-6);
}

#[test]
fn an_island_skips_inputs_without_gradients() {
    let x = Tensor::<1>::from_floats([1.0, 2.0], &device()).require_grad();
    let c = Tensor::<1>::from_floats([3.0, 4.0], &device());
    let (y, _) = island::<2, 1>([&x, &c], |[x, c]| vec![x * c]).unwrap();
    let grads = y.sum().backward();
    assert_close("dx", x.grad(&grads).unwrap(), c.clone(), 1e-6);
    assert!(c.grad(&grads).is_none());
}

#[test]
fn an_islands_output_that_views_its_input_at_an_offset_is_a_copy() {
    // Burn adds in place into a tensor only it holds: the output must not be x's memory.
    for device in [device(), Device::libtorch()] {
        let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0], &device);
        let x = if device.is_autodiff() {
            x.require_grad()
        } else {
            x
        };
        let (y, _) = island::<1, 1>([&x], |[x]| vec![x.narrow(0, 1, 2)]).unwrap();
        let z = y.add_scalar(10.0);
        assert_eq!(values(z), [12.0, 13.0]);
        assert_eq!(values(x), [1.0, 2.0, 3.0], "{device:?}");
    }
}

#[test]
fn an_island_that_passes_its_gradient_through_leaves_the_others_intact() {
    // z = island(x + c) + w + 3x: LibTorch hands back the output gradient itself as x's, the
    // same tensor Burn's add gave w. dz/dw = r, dz/dx = r + 3r.
    let x = Tensor::<1>::from_floats([1.0, 2.0], &device()).require_grad();
    let w = Tensor::<1>::from_floats([5.0, 6.0], &device()).require_grad();
    let c = Tensor::<1>::from_floats([0.5, 0.5], &device());
    let r = Tensor::<1>::from_floats([1.0, -2.0], &device());
    let (y, _) = island::<2, 1>([&x, &c], |[x, c]| vec![x + c]).unwrap();
    let z = y + w.clone() + x.clone().mul_scalar(3.0);
    let grads = (z * r).sum().backward();
    assert_eq!(values(w.grad(&grads).unwrap()), [1.0, -2.0]);
    assert_eq!(values(x.grad(&grads).unwrap()), [4.0, -8.0]);
}

/// Two Adam steps with a constant gradient by hand: the bias-corrected step is lr each time.
/// m = 0.05, 0.095; v = 0.00025, 0.00049975; p = 1.0 - 0.1 - 0.1. AdamW (weight decay 0.1)
/// first shrinks p by 1 - lr * 0.1: 0.99 - 0.1 = 0.89, then 0.89 * 0.99 - 0.1 = 0.7811.
#[test]
fn adam_steps_by_hand() {
    for (decoupled, weight_decay, expected) in
        [(false, 0.0, [0.9, 0.8]), (true, 0.1, [0.89, 0.7811])]
    {
        let device = Device::libtorch();
        let hp = |step| AdamStep {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            decoupled,
            step,
        };
        let grad = || Tensor::<1>::from_floats([0.5, 0.5], &device);
        let param = Tensor::<1>::from_floats([1.0, 1.0], &device);
        let (param, moments) = adam(&hp(1), param, grad(), None, false).ok().unwrap();
        assert_close(
            "step 1",
            param.clone(),
            Tensor::from_floats([expected[0]; 2], &device),
            1e-6,
        );
        let (param, moments) = adam(&hp(2), param, grad(), Some(moments), false)
            .ok()
            .unwrap();
        assert_close(
            "step 2",
            param,
            Tensor::from_floats([expected[1]; 2], &device),
            1e-6,
        );
        assert_close(
            "m",
            moments.m,
            Tensor::from_floats([0.095; 2], &device),
            1e-6,
        );
        assert_close(
            "v",
            moments.v,
            Tensor::from_floats([0.00049975; 2], &device),
            1e-6,
        );
        assert!(moments.max_v.is_none());
    }
    assert_eq!(native_runs(), 4);
}

#[test]
fn adam_leaves_other_backends_and_autodiff_to_burn() {
    let hp = AdamStep {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        decoupled: false,
        step: 1,
    };
    for device in [Device::flex(), Device::libtorch().autodiff()] {
        let param = Tensor::<1>::from_floats([1.0], &device);
        let grad = Tensor::<1>::from_floats([0.5], &device);
        let inputs = adam(&hp, param, grad, None, false).err().unwrap();
        assert_eq!(
            values(inputs.param),
            [1.0],
            "{device:?}: inputs come back untouched"
        );
        assert_eq!(values(inputs.grad), [0.5], "{device:?}");
        assert!(inputs.moments.is_none());
    }
    assert_eq!(native_runs(), 0);
}

#[test]
fn linear_over_leading_axes_matches_burn() {
    use burn::nn::LinearConfig;
    let layer = LinearConfig::new(6, 4).init(&device());
    let x = random([3, 16, 6]);
    let weights = random([3, 16, 4]);
    let grads = |g: &_| {
        let bias = layer.bias.as_ref().unwrap();
        (layer.weight.grad(g).unwrap(), bias.grad(g).unwrap())
    };
    let native = run(&x, &weights, |x| linear(&layer, x), grads);
    let burn = run(&x, &weights, |x| layer.forward(x), grads);
    assert_runs_close(["weight grad", "bias grad"], native, burn);
    let x4 = random([2, 3, 5, 6]);
    assert_close(
        "rank 4",
        linear(&layer, x4.clone()),
        layer.forward(x4),
        1e-5,
    );
}

#[test]
fn an_islands_saved_output_survives_in_place_ops_downstream() {
    // exp saves its result for the backward; Burn would add 1 in place on the only handle.
    let x = Tensor::<1>::from_floats([0.0, 1.0], &device()).require_grad();
    let (y, _) = island::<1, 1>([&x], |[x]| vec![x.exp()]).unwrap();
    let z = y.add_scalar(1.0);
    let grads = z.sum().backward();
    let e = std::f32::consts::E;
    assert_close(
        "dx = exp(x)",
        x.grad(&grads).unwrap(),
        Tensor::from_floats([1.0, e], &device()),
        1e-6,
    );
}

#[test]
fn an_island_may_return_its_input_and_share_gradients() {
    let x = Tensor::<1>::from_floats([2.0, 3.0], &device()).require_grad();
    let h = x.clone().mul_scalar(1.0);
    // The output aliases the input, and LibTorch hands one gradient to both inputs.
    let (y, _) = island::<2, 1>([&h, &h], |[a, b]| vec![a + b]).unwrap();
    let (same, _) = island::<1, 1>([&h], |[a]| vec![a.shallow_clone()]).unwrap();
    // h.sum(): a Burn branch whose gradient reaches h first, so Burn adds in place into
    // the islands' gradients.
    let total = y.sum() + same.add_scalar(5.0).sum() + h.clone().sum();
    let grads = total.backward();
    assert_eq!(values(h), [2.0, 3.0], "the input was not overwritten");
    assert_close(
        "dx",
        x.grad(&grads).unwrap(),
        Tensor::from_floats([4.0, 4.0], &device()),
        1e-6,
    );
}

#[test]
fn an_island_gives_zeros_to_inputs_it_ignores() {
    let x = Tensor::<1>::from_floats([2.0, 3.0], &device()).require_grad();
    let (a, b) = (x.clone().mul_scalar(2.0), x.clone().mul_scalar(3.0));
    let (y, _) = island::<2, 1>([&a, &b], |[a, _]| vec![a * 4.0]).unwrap();
    let grads = y.sum().backward();
    assert_close(
        "dx",
        x.grad(&grads).unwrap(),
        Tensor::from_floats([8.0, 8.0], &device()),
        1e-6,
    );
}

#[test]
fn adam_copies_a_parameter_another_handle_holds_and_runs_amsgrad() {
    let device = Device::libtorch();
    let hp = |step| AdamStep {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        decoupled: false,
        step,
    };
    let param = Tensor::<1>::from_floats([1.0, 1.0], &device);
    let kept = param.clone();
    let grad = || Tensor::<1>::from_floats([0.5, -0.5], &device);
    let (param, moments) = adam(&hp(1), param, grad(), None, true).ok().unwrap();
    assert_eq!(
        values(kept),
        [1.0, 1.0],
        "the other handle still sees the old value"
    );
    assert_close(
        "step 1",
        param.clone(),
        Tensor::from_floats([0.9, 1.1], &device),
        1e-6,
    );
    // AMSGrad keeps the largest second moment: with a smaller gradient it still divides by it.
    let max_v = moments.max_v.clone().expect("amsgrad keeps its maximum");
    assert_close(
        "max v",
        max_v,
        Tensor::from_floats([0.00025; 2], &device),
        1e-6,
    );
    let small = Tensor::<1>::from_floats([0.0, 0.0], &device);
    let (_, moments) = adam(&hp(2), param, small, Some(moments), true)
        .ok()
        .unwrap();
    assert_close(
        "max v kept",
        moments.max_v.unwrap(),
        Tensor::from_floats([0.00025; 2], &device),
        1e-6,
    );
    assert_close(
        "v decays",
        moments.v,
        Tensor::from_floats([0.00024975; 2], &device),
        1e-6,
    );
}

#[test]
fn conv1d_and_its_gradients_by_hand() {
    // x = [1, 2, 3], w = [1, -1], bias 0.5, no padding: y = [1 - 2, 2 - 3] + 0.5 = [-0.5, -0.5].
    // Backpropagated with r = [1, 2]: dx = [r0 w0, r0 w1 + r1 w0, r1 w1] = [1, 1, -2],
    // dw = [r0 x0 + r1 x1, r0 x1 + r1 x2] = [5, 8], dbias = r0 + r1 = 3.
    let mut conv = burn::nn::conv::Conv1dConfig::new(1, 1, 2).init(&device());
    conv.weight = Param::from_tensor(Tensor::<3>::from_floats([[[1.0, -1.0]]], &device()));
    conv.bias = Some(Param::from_tensor(Tensor::<1>::from_floats(
        [0.5],
        &device(),
    )));
    let x = Tensor::<3>::from_floats([[[1.0, 2.0, 3.0]]], &device());
    let r = Tensor::<3>::from_floats([[[1.0, 2.0]]], &device());
    let bias = conv.bias.clone().unwrap();
    let (y, gx, (gw, gb)) = run(
        &x,
        &r,
        |x| natively(|| conv1d(&conv, x)),
        |g| (conv.weight.grad(g).unwrap(), bias.grad(g).unwrap()),
    );
    assert_eq!(values(y), [-0.5, -0.5]);
    assert_eq!(values(gx), [1.0, 1.0, -2.0]);
    assert_eq!(values(gw), [5.0, 8.0]);
    assert_eq!(values(gb), [3.0]);
}

/// Runs a native convolution and Burn's on `x`: the output and the gradients of the input,
/// weight and bias must agree.
fn assert_conv_matches<const D: usize>(
    x: Tensor<D>,
    weight: &Param<Tensor<D>>,
    bias: &Param<Tensor<1>>,
    native: impl Fn(Tensor<D>) -> Tensor<D>,
    burn: impl Fn(Tensor<D>) -> Tensor<D>,
) {
    let weights = random(burn(x.clone()).dims());
    let grads = |g: &_| (weight.grad(g).unwrap(), bias.grad(g).unwrap());
    let native = run(&x, &weights, |x| natively(|| native(x)), grads);
    let burn = run(&x, &weights, burn, grads);
    assert_runs_close(["weight grad", "bias grad"], native, burn);
}

#[test]
fn conv1d_matches_burn() {
    use burn::nn::PaddingConfig1d;
    use burn::nn::conv::Conv1dConfig;
    // Strided and padded (cnn1d's first block), and dilated with a kernel of 3.
    for config in [
        Conv1dConfig::new(2, 4, 6)
            .with_stride(3)
            .with_padding(PaddingConfig1d::Explicit(3, 3)),
        Conv1dConfig::new(4, 6, 3)
            .with_dilation(2)
            .with_groups(2)
            .with_padding(PaddingConfig1d::Same),
    ] {
        let conv = config.init(&device());
        let x = random([3, config.channels_in, 20]);
        let (weight, bias) = (&conv.weight, conv.bias.as_ref().unwrap());
        assert_conv_matches(x, weight, bias, |x| conv1d(&conv, x), |x| conv.forward(x));
    }
}

#[test]
fn conv2d_matches_burn() {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    for config in [
        Conv2dConfig::new([2, 4], [3, 5])
            .with_stride([2, 1])
            .with_padding(PaddingConfig2d::Explicit(1, 2, 1, 2)),
        Conv2dConfig::new([4, 6], [3, 3])
            .with_dilation([2, 1])
            .with_groups(2)
            .with_padding(PaddingConfig2d::Same),
    ] {
        let conv = config.init(&device());
        let x = random([2, config.channels[0], 9, 7]);
        let (weight, bias) = (&conv.weight, conv.bias.as_ref().unwrap());
        assert_conv_matches(x, weight, bias, |x| conv2d(&conv, x), |x| conv.forward(x));
    }
}

#[test]
fn conv_with_a_frozen_weight() {
    use burn::module::Module;
    use burn::nn::conv::Conv1dConfig;
    let conv = Conv1dConfig::new(3, 4, 3).init(&device()).no_grad();
    let x = random([2, 3, 10]);
    let weights = random([2, 4, 8]);
    let frozen = |g: &_| {
        assert!(conv.weight.grad(g).is_none() && conv.bias.as_ref().unwrap().grad(g).is_none());
    };
    let (y, gx, ()) = run(&x, &weights, |x| natively(|| conv1d(&conv, x)), frozen);
    let (y0, gx0, ()) = run(&x, &weights, |x| conv.forward(x), frozen);
    assert_close("output", y, y0, 1e-5);
    assert_close("x grad", gx, gx0, 1e-5);
}

#[test]
fn conv_without_bias_or_input_gradient() {
    use burn::nn::conv::Conv1dConfig;
    let conv = Conv1dConfig::new(1, 3, 4).with_bias(false).init(&device());
    // The input is data: only the weight gets a gradient, as in a network's first layer.
    let x = random([2, 1, 12]);
    let weights = random([2, 3, 9]);
    let weight_grad = |f: &dyn Fn(Tensor<3>) -> Tensor<3>| {
        let y = f(x.clone());
        let grads = (y.clone() * weights.clone()).sum().backward();
        assert!(x.grad(&grads).is_none());
        (y.detach(), conv.weight.grad(&grads).unwrap())
    };
    let (y, gw) = natively(|| weight_grad(&|x| conv1d(&conv, x)));
    let (y0, gw0) = weight_grad(&|x| conv.forward(x));
    assert_close("output", y, y0, 1e-5);
    assert_close("weight grad", gw, gw0, 1e-5);
}

#[test]
fn conv_with_uneven_padding_a_wide_kernel_or_other_backends_is_burns() {
    use burn::nn::PaddingConfig1d;
    use burn::nn::conv::Conv1dConfig;
    // Same padding with an even kernel puts one more element at the end: Burn pads the input.
    let uneven = Conv1dConfig::new(2, 2, 4).with_padding(PaddingConfig1d::Same);
    // Burn's backward is faster on the CPU for wide kernels.
    let wide = Conv1dConfig::new(2, 2, 33);
    for device in [device(), Device::flex().autodiff()] {
        for config in [&uneven, &wide] {
            let conv = config.init(&device);
            let x = Tensor::<3>::random([1, 2, 40], Distribution::Default, &device);
            assert_close("output", conv1d(&conv, x.clone()), conv.forward(x), 1e-6);
        }
    }
    assert_eq!(native_runs(), 0);
}

#[test]
fn a_libtorch_error_in_the_shim_is_a_panic_with_its_message() {
    let [x, w, g] = [[1, 2, 5], [3, 4, 2], [1, 3, 4]]
        .map(|shape| tch::Tensor::ones(shape, tch::kind::FLOAT_CPU));
    let geometry = ffi::ConvGeometry {
        stride: vec![1],
        padding: vec![0],
        dilation: vec![1],
        groups: 1,
    };
    let result = std::panic::catch_unwind(|| {
        ffi::convolution_backward(&g, &x, &w, &geometry, None, [true, true, false])
    });
    let message = *result
        .expect_err("2 input channels against a weight for 4")
        .downcast::<String>()
        .unwrap();
    assert!(
        message.starts_with("LibTorch's convolution_backward failed: "),
        "{message}"
    );
}

#[test]
fn max_pool1d_and_its_gradient_by_hand() {
    use burn::nn::pool::MaxPool1dConfig;
    // Windows of 2 over 7 values (the last is left over): [3, 1] [2, 2] [-1, 5], then 9.
    // A tie goes to the first element, as in LibTorch's kernel.
    let pool = MaxPool1dConfig::new(2).init();
    let x = Tensor::<3>::from_floats([[[3.0, 1.0, 2.0, 2.0, -1.0, 5.0, 9.0]]], &device());
    let r = Tensor::<3>::from_floats([[[10.0, 20.0, 30.0]]], &device());
    let (y, gx, ()) = run(&x, &r, |x| natively(|| max_pool1d(&pool, x)), |_| ());
    assert_eq!(values(y), [3.0, 2.0, 5.0]);
    assert_eq!(values(gx), [10.0, 0.0, 20.0, 0.0, 0.0, 30.0, 0.0]);
}

#[test]
fn max_pool_picks_as_libtorch_does_with_ties_and_nans() {
    use burn::nn::pool::MaxPool1dConfig;
    // Windows of 3: a tie of the largest (first wins), NaN in the middle (it wins), two NaNs
    // (the last wins), NaN first then a larger value (the NaN stays).
    let pool = MaxPool1dConfig::new(3).init();
    let nan = f32::NAN;
    let x = Tensor::<3>::from_floats(
        [[[4.0, 1.0, 4.0, 0.0, nan, 7.0, nan, 2.0, nan, nan, 8.0, 1.0]]],
        &device(),
    );
    let r = Tensor::<3>::from_floats([[[1.0, 2.0, 3.0, 4.0]]], &device());
    let (y, gx, ()) = run(&x, &r, |x| natively(|| max_pool1d(&pool, x)), |_| ());
    let y = values(y);
    assert_eq!(y[0], 4.0);
    assert!(y[1..].iter().all(|v| v.is_nan()), "{y:?}");
    let expected = [1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0];
    assert_eq!(values(gx), expected);
    // LibTorch's own indexed kernel (Burn's path) routes the same way.
    let (_, gx0, ()) = run(&x, &r, |x| pool.forward(x), |_| ());
    assert_eq!(values(gx0), expected);
}

#[test]
fn max_pool_matches_burn() {
    use burn::nn::pool::{MaxPool1dConfig, MaxPool2dConfig};
    for kernel in [2, 3] {
        let pool = MaxPool1dConfig::new(kernel).init();
        let x = random([3, 4, 17]);
        let weights = random(pool.forward(x.clone()).dims());
        let native = run(&x, &weights, |x| natively(|| max_pool1d(&pool, x)), |_| ());
        let burn = run(&x, &weights, |x| pool.forward(x), |_| ());
        assert_close("output", native.0, burn.0, 0.0);
        assert_close("x grad", native.1, burn.1, 0.0);
    }
    let pool = MaxPool2dConfig::new([2, 3]).init();
    let x = random([2, 3, 9, 10]);
    let weights = random(pool.forward(x.clone()).dims());
    let native = run(&x, &weights, |x| natively(|| max_pool2d(&pool, x)), |_| ());
    let burn = run(&x, &weights, |x| pool.forward(x), |_| ());
    assert_close("output", native.0, burn.0, 0.0);
    assert_close("x grad", native.1, burn.1, 0.0);
}

#[test]
fn max_pool_by_one_is_a_copy_and_a_short_input_is_burns_error() {
    use burn::nn::pool::MaxPool1dConfig;
    let x = random([2, 3, 5]);
    let weights = random([2, 3, 5]);
    let pool = MaxPool1dConfig::new(1).init();
    let (y, gx, ()) = run(&x, &weights, |x| natively(|| max_pool1d(&pool, x)), |_| ());
    assert_close("output", y, x.clone(), 0.0);
    assert_close("x grad", gx, weights, 0.0);
    // Windows of 6 over 5 values: no output, which Burn (LibTorch) reports as an error.
    let pool = MaxPool1dConfig::new(6).init();
    let before = native_runs();
    let native = std::panic::catch_unwind(|| max_pool1d(&pool, x.clone()));
    let burn = std::panic::catch_unwind(|| pool.forward(x.clone()));
    assert!(native.is_err() && burn.is_err());
    assert_eq!(native_runs(), before);
}

#[test]
fn overlapping_pools_and_other_backends_are_burns() {
    use burn::nn::pool::MaxPool1dConfig;
    let overlapping = MaxPool1dConfig::new(3).with_stride(2);
    for device in [device(), Device::flex().autodiff()] {
        let x = Tensor::<3>::random([1, 2, 11], Distribution::Default, &device);
        let pool = overlapping.init();
        assert_close(
            "output",
            max_pool1d(&pool, x.clone()),
            pool.forward(x.clone()),
            0.0,
        );
    }
    let x = Tensor::<3>::random(
        [1, 2, 11],
        Distribution::Default,
        &Device::flex().autodiff(),
    );
    let pool = MaxPool1dConfig::new(2).init();
    assert_close("output", max_pool1d(&pool, x.clone()), pool.forward(x), 0.0);
    assert_eq!(native_runs(), 0);
}
