// LibTorch functions stoker::native needs that tch 0.22's C API does not bind.
//
// Tensors cross as tch's handles (`torch::Tensor*`); results are new handles the Rust side owns
// (tch frees them with `delete`), null where there is no result. A C++ exception comes back as
// a message the caller frees with stoker_native_free_error.

#include "error.h"

#include <ATen/core/Tensor.h>
#include <ATen/ops/convolution_backward.h>
#include <torch/csrc/autograd/autograd.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

using at::Tensor;

namespace {

// Returned when even the message cannot be allocated; never freed.
char out_of_memory[] = "out of memory while reporting a LibTorch error";

// `tensor`, or a copy when it shares storage with one of `others`: Burn adds gradients in
// place, so a gradient it registers must own its memory.
Tensor unaliased(const Tensor &tensor, const std::vector<Tensor> &others) {
  for (const auto &other : others) {
    if (other.defined() && tensor.is_alias_of(other)) {
      return tensor.clone();
    }
  }
  return tensor;
}

} // namespace

char *stoker_native_error(const char *what) {
  char *copy = strdup(what);
  return copy != nullptr ? copy : out_of_memory;
}

extern "C" {

// Whether two tensors share storage (at any offset), as Tensor::is_alias_of says.
int stoker_native_is_alias_of(const Tensor *a, const Tensor *b) {
  return a->defined() && b->defined() && a->is_alias_of(*b) ? 1 : 0;
}

void stoker_native_free_error(char *error) {
  if (error != out_of_memory) {
    free(error);
  }
}

// aten::convolution_backward: the gradients of a (non-transposed) convolution with respect to
// its input, weight and bias, for those `output_mask` asks for; the others are null.
char *stoker_native_convolution_backward(const Tensor *grad_output, const Tensor *input,
                                         const Tensor *weight, const int64_t *stride,
                                         const int64_t *padding, const int64_t *dilation,
                                         int64_t dims, int64_t groups, int bias_channels,
                                         const int *output_mask, Tensor **results) {
  for (int i = 0; i < 3; ++i) {
    results[i] = nullptr;
  }
  try {
    std::vector<int64_t> bias_sizes{bias_channels};
    auto grads = at::convolution_backward(
        *grad_output, *input, *weight,
        bias_channels >= 0 ? at::OptionalIntArrayRef(bias_sizes) : at::OptionalIntArrayRef(),
        at::IntArrayRef(stride, dims), at::IntArrayRef(padding, dims),
        at::IntArrayRef(dilation, dims), false, std::vector<int64_t>(dims, 0), groups,
        {output_mask[0] != 0, output_mask[1] != 0, output_mask[2] != 0});
    Tensor all[3] = {std::get<0>(grads), std::get<1>(grads), std::get<2>(grads)};
    for (int i = 0; i < 3; ++i) {
      if (output_mask[i] != 0 && all[i].defined()) {
        results[i] = new Tensor(all[i]);
      }
    }
    return nullptr;
  } catch (const std::exception &e) {
    return stoker_native_error(e.what());
  } catch (...) {
    return stoker_native_error("an exception that is not a std::exception");
  }
}

// torch::autograd::grad with output gradients: the vector-Jacobian product of `outputs` with
// `grad_outputs`, with respect to `inputs`. An input the graph does not reach gets null. A
// gradient that shares storage with an output gradient, an output, an input or an earlier
// gradient (an island that passes its gradient through, or returns its input) is copied.
char *stoker_native_grad(const Tensor *const *outputs, const Tensor *const *grad_outputs,
                         int n_outputs, const Tensor *const *inputs, int n_inputs,
                         Tensor **results) {
  for (int i = 0; i < n_inputs; ++i) {
    results[i] = nullptr;
  }
  try {
    std::vector<Tensor> outputs_, grad_outputs_, inputs_;
    for (int i = 0; i < n_outputs; ++i) {
      outputs_.push_back(*outputs[i]);
      grad_outputs_.push_back(*grad_outputs[i]);
    }
    for (int i = 0; i < n_inputs; ++i) {
      inputs_.push_back(*inputs[i]);
    }
    auto grads = torch::autograd::grad(outputs_, inputs_, grad_outputs_,
                                       /*retain_graph=*/false, /*create_graph=*/false,
                                       /*allow_unused=*/true);
    std::vector<Tensor> taken(grad_outputs_);
    taken.insert(taken.end(), outputs_.begin(), outputs_.end());
    taken.insert(taken.end(), inputs_.begin(), inputs_.end());
    std::vector<Tensor> owned;
    for (int i = 0; i < n_inputs; ++i) {
      owned.push_back(grads[i].defined() ? unaliased(grads[i], taken) : Tensor());
      taken.push_back(owned.back());
    }
    for (int i = 0; i < n_inputs; ++i) {
      if (owned[i].defined()) {
        results[i] = new Tensor(owned[i]);
      }
    }
    return nullptr;
  } catch (const std::exception &e) {
    return stoker_native_error(e.what());
  } catch (...) {
    return stoker_native_error("an exception that is not a std::exception");
  }
}

} // extern "C"
