//! The LibTorch functions of `csrc/native.cpp`: tch 0.22 binds none of them.

use std::ffi::{CStr, c_char, c_int};
use std::ptr;

use tch::Tensor;
use torch_sys::C_tensor;

unsafe extern "C" {
    fn stoker_native_is_alias_of(a: *const C_tensor, b: *const C_tensor) -> c_int;
    fn stoker_native_free_error(error: *mut c_char);
    fn stoker_native_convolution_backward(
        grad_output: *const C_tensor,
        input: *const C_tensor,
        weight: *const C_tensor,
        stride: *const i64,
        padding: *const i64,
        dilation: *const i64,
        dims: i64,
        groups: i64,
        bias_channels: c_int,
        output_mask: *const c_int,
        results: *mut *mut C_tensor,
    ) -> *mut c_char;
    fn stoker_native_grad(
        outputs: *const *const C_tensor,
        grad_outputs: *const *const C_tensor,
        n_outputs: c_int,
        inputs: *const *const C_tensor,
        n_inputs: c_int,
        results: *mut *mut C_tensor,
    ) -> *mut c_char;
}

/// Whether `a` and `b` share storage, at any offset (`Tensor::is_alias_of`).
pub(crate) fn is_alias_of(a: &Tensor, b: &Tensor) -> bool {
    // SAFETY: both handles are valid for the call; the shim only reads them.
    unsafe { stoker_native_is_alias_of(a.as_ptr(), b.as_ptr()) != 0 }
}

/// The message of a shim error (null for none), freed.
pub(crate) fn take_error(error: *mut c_char) -> Option<String> {
    if error.is_null() {
        return None;
    }
    // SAFETY: a non-null error is a NUL-terminated string the shim allocated with strdup.
    let message = unsafe { CStr::from_ptr(error) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: freed once, by the allocator that made it.
    unsafe { stoker_native_free_error(error) };
    Some(message)
}

/// Panics with LibTorch's message if `error` is one (as tch's own calls do), freeing it.
fn check(error: *mut c_char, what: &str) {
    if let Some(message) = take_error(error) {
        panic!("LibTorch's {what} failed: {message}");
    }
}

/// Takes ownership of a tensor the shim returned; a null handle is `None`.
fn owned(handle: *mut C_tensor) -> Option<Tensor> {
    // SAFETY: a non-null handle is a new `torch::Tensor` nobody else owns.
    (!handle.is_null()).then(|| unsafe { Tensor::from_ptr(handle) })
}

/// A convolution's geometry, one entry per spatial axis, as `aten::convolution` takes it.
#[derive(Debug, Clone)]
pub(crate) struct ConvGeometry {
    pub stride: Vec<i64>,
    pub padding: Vec<i64>,
    pub dilation: Vec<i64>,
    pub groups: i64,
}

impl ConvGeometry {
    /// The geometry of a Burn convolution layer's fields.
    pub fn new(stride: &[usize], padding: &[usize], dilation: &[usize], groups: usize) -> Self {
        let long = |values: &[usize]| values.iter().map(|&v| v as i64).collect();
        ConvGeometry {
            stride: long(stride),
            padding: long(padding),
            dilation: long(dilation),
            groups: groups as i64,
        }
    }
}

/// `aten::convolution_backward` for a non-transposed convolution: the gradients with respect
/// to the input, the weight and a bias of `bias_channels` (when given), each only if `wanted`.
pub(crate) fn convolution_backward(
    grad_output: &Tensor,
    input: &Tensor,
    weight: &Tensor,
    geometry: &ConvGeometry,
    bias_channels: Option<usize>,
    wanted: [bool; 3],
) -> [Option<Tensor>; 3] {
    let dims = geometry.stride.len();
    assert!(
        geometry.padding.len() == dims && geometry.dilation.len() == dims,
        "convolution geometry of mixed ranks"
    );
    let bias_channels = bias_channels.map_or(-1, |c| c as c_int);
    let mask = wanted.map(c_int::from);
    let mut results = [ptr::null_mut(); 3];
    // SAFETY: every pointer is valid for the call; the shim writes three handles.
    let error = unsafe {
        stoker_native_convolution_backward(
            grad_output.as_ptr(),
            input.as_ptr(),
            weight.as_ptr(),
            geometry.stride.as_ptr(),
            geometry.padding.as_ptr(),
            geometry.dilation.as_ptr(),
            dims as i64,
            geometry.groups,
            bias_channels,
            mask.as_ptr(),
            results.as_mut_ptr(),
        )
    };
    check(error, "convolution_backward");
    results.map(owned)
}

/// The gradients of `outputs`, weighted by `grad_outputs`, with respect to `inputs` (which
/// require a gradient in LibTorch's graph): `torch.autograd.grad(outputs, inputs,
/// grad_outputs, allow_unused=True)`. An input the graph does not reach gets `None`. Each
/// gradient owns its memory: one that shares storage with an output, an output gradient, an
/// input or another gradient comes back copied.
pub(crate) fn grad(
    outputs: &[&Tensor],
    grad_outputs: &[&Tensor],
    inputs: &[Tensor],
) -> Vec<Option<Tensor>> {
    assert_eq!(outputs.len(), grad_outputs.len(), "one gradient per output");
    let outputs: Vec<_> = outputs.iter().map(|t| t.as_ptr()).collect();
    let grad_outputs: Vec<_> = grad_outputs.iter().map(|t| t.as_ptr()).collect();
    let input_handles: Vec<_> = inputs.iter().map(|t| t.as_ptr()).collect();
    let mut results = vec![ptr::null_mut(); inputs.len()];
    // SAFETY: every pointer is valid for the call; the shim writes one handle per input.
    let error = unsafe {
        stoker_native_grad(
            outputs.as_ptr(),
            grad_outputs.as_ptr(),
            outputs.len() as c_int,
            input_handles.as_ptr(),
            input_handles.len() as c_int,
            results.as_mut_ptr(),
        )
    };
    check(error, "autograd grad");
    results.into_iter().map(owned).collect()
}
