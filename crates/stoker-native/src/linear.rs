//! A linear layer over any number of leading axes as one matrix product.
//!
//! Burn's `Linear` on a [batch, rows, features] input keeps the batched product when `rows` is
//! a multiple of its row tile (16): a good choice for its GPU kernels, but on LibTorch's CPU it
//! runs one small MKL product per batch (`mkl_gemm_batched`), forward and for the input's
//! gradient. `linear` flattens the leading axes first, so the forward and both gradients are
//! single products, as PyTorch's `nn.Linear` computes them.

use burn::nn::Linear;
use burn::tensor::Tensor;

/// `linear.forward(x)`, with `x`'s leading axes flattened into one for the product.
pub fn linear<const D: usize>(linear: &Linear, x: Tensor<D>) -> Tensor<D> {
    if D <= 2 {
        return linear.forward(x);
    }
    let mut dims = x.dims();
    let rows = dims[..D - 1].iter().product::<usize>();
    let y = linear.forward(x.reshape([rows, dims[D - 1]]));
    dims[D - 1] = y.dims()[1];
    y.reshape(dims)
}
