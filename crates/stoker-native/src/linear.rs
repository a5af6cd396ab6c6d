//! A linear layer over any number of leading axes as one matrix product.
//!
//! Burn's `Linear` on a [batch, rows, features] input keeps the batched product when `rows` is
//! a multiple of its row tile (16): a good choice for its GPU kernels, but on LibTorch's CPU it
//! runs one small MKL product per batch (`mkl_gemm_batched`), forward and for the input's
//! gradient. `linear` flattens the leading axes first, so the forward and both gradients are
//! single products, as PyTorch's `nn.Linear` computes them.
//!
//! Under mixed precision ([`with_compute_type`](crate::autocast::with_compute_type)) the product
//! runs as LibTorch's `linear` on the input, weight and bias cast to the compute type, in an
//! island, and the output comes back in the input's type.

use burn::nn::Linear;
use burn::tensor::Tensor;

use crate::autocast::{cast, compute_type};
use crate::island::island;

/// `linear.forward(x)`, with `x`'s leading axes flattened into one for the product.
pub fn linear<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    if let Some(y) = mixed(linear, &x) {
        return y;
    }
    if D <= 2 {
        return linear.forward(x);
    }
    let mut dims = x.dims();
    let rows = dims[..D - 1].iter().product::<usize>();
    let y = linear.forward(x.reshape([rows, dims[D - 1]]));
    dims[D - 1] = y.dims()[1];
    y.reshape(dims)
}

/// The layer in the compute type of mixed precision, or `None` (nothing run) when there is
/// none or `x` is not a LibTorch tensor.
fn mixed<const D: usize>(linear: &Linear, x: &Tensor<D>) -> Option<Tensor<D>> {
    let kind = compute_type()?.kind();
    let weight = linear.weight.val();
    // Burn stores the weight as [in, out]; LibTorch's `linear` takes [out, in].
    let product = move |x: &tch::Tensor, w: &tch::Tensor, b: Option<&tch::Tensor>| {
        let bias = b.map(|b| cast(b, kind));
        cast(x, kind)
            .linear(&cast(w, kind).tr(), bias.as_ref())
            .to_kind(x.kind())
    };
    let output = match &linear.bias {
        Some(bias) => island([x, &weight, &bias.val()], |[x, w, b]| {
            vec![product(x, w, Some(b))]
        }),
        None => island([x, &weight], |[x, w]| vec![product(x, w, None)]),
    };
    output.map(|(y, _)| y)
}
