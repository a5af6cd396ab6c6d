// libtorch's c10d process groups for stoker's data-parallel training: the Gloo process group
// PyTorch's DDP uses on CPU and, in a build against a CUDA libtorch with NCCL's headers
// (STOKER_NCCL, see build.rs), the NCCL one it uses on CUDA; a FileStore or TCPStore rendezvous;
// and the collectives a data-parallel step needs (all-reduce, broadcast, barrier). Nothing here
// is an implementation of a collective: every call goes to c10d::ProcessGroupGloo, which the
// PyPI torch wheel exports from libtorch_cpu.so, or c10d::ProcessGroupNCCL (libtorch_cuda.so).
// Gloo's own headers are vendored (vendor/gloo).
//
// Tensors cross as tch's handles (`torch::Tensor*`) and are changed in place. A C++ exception
// (a timeout, a peer that died) comes back as a message the caller frees with
// stoker_native_free_error.

#include "error.h"

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/autograd/custom_function.h>
#ifdef STOKER_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

using at::Tensor;

struct StokerProcessGroup {
  c10::intrusive_ptr<c10d::Backend> group;
  // Where the group's collectives read their tensors: the CPU for Gloo, the process's GPU for
  // NCCL (tensors elsewhere are copied there and back).
  c10::Device device;
};

namespace {

// Runs `body`; a C++ exception becomes its message (libtorch's without its backtrace).
template <typename F> char *guarded(F body) {
  try {
    body();
    return nullptr;
  } catch (const c10::Error &e) {
    return stoker_native_error(e.what_without_backtrace());
  } catch (const std::exception &e) {
    return stoker_native_error(e.what());
  }
}

// The tensors flattened into one contiguous buffer on `device` (one collective for all of them,
// as DDP's gradient buckets); they must share a dtype.
Tensor bucket_of(const Tensor *const *tensors, int n, c10::Device device) {
  std::vector<Tensor> flat;
  flat.reserve(n);
  for (int i = 0; i < n; ++i) {
    TORCH_CHECK(tensors[i]->scalar_type() == tensors[0]->scalar_type(),
                "every tensor of one collective must have the same dtype");
    flat.push_back(tensors[i]->reshape({-1}));
  }
  return at::cat(flat).to(device);
}

// The rendezvous: a FileStore at `address` when `port` is 0, else a TCPStore at address:port
// that rank 0 serves.
c10::intrusive_ptr<c10d::Store> store_of(const char *address, int port, int rank, int world,
                                         std::chrono::milliseconds timeout) {
  if (port == 0) {
    auto store = c10::make_intrusive<c10d::FileStore>(std::string(address), world);
    store->setTimeout(timeout);
    return store;
  }
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(port);
  options.isServer = rank == 0;
  options.numWorkers = static_cast<std::size_t>(world);
  options.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(std::string(address), options);
}

// Copies the bucket's values back into the tensors it was made of.
void unbucket(const Tensor &bucket, const Tensor *const *tensors, int n) {
  int64_t offset = 0;
  for (int i = 0; i < n; ++i) {
    const Tensor &t = *tensors[i];
    const_cast<Tensor &>(t).copy_(bucket.narrow(0, offset, t.numel()).view(t.sizes()));
    offset += t.numel();
  }
}

} // namespace

namespace {

// The process group `sync_batchnorm` reduces batch statistics over, set by the ddp strategy
// for the length of a fit; none otherwise.
c10::intrusive_ptr<c10d::Backend> sync_group;

// Sums `x` over the processes of `sync_group` (a copy; `x` is left as it is).
Tensor summed(const Tensor &x) {
  TORCH_CHECK(sync_group, "sync_batchnorm: no process group (the ddp strategy sets it)");
  std::vector<Tensor> list{x.contiguous().clone()};
  sync_group->allreduce(list)->wait();
  return list[0];
}

// A differentiable sum over the processes: every process gets sum_k x_k, and the gradient of
// x on each process is the sum over the processes of the gradients of that sum (each process's
// loss depends on it), as torch's SyncBatchNorm all-reduces sum_dy and sum_dy_xmu backward.
struct AllReduceSum : public torch::autograd::Function<AllReduceSum> {
  static Tensor forward(torch::autograd::AutogradContext *, const Tensor &x) { return summed(x); }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *,
                                                 torch::autograd::variable_list grads) {
    return {summed(grads[0])};
  }
};

} // namespace

extern "C" {

// A Gloo process group of `world` processes, this one `rank`. The rendezvous is a FileStore at
// `address` when `port` is 0, else a TCPStore at address:port that rank 0 serves. Every
// operation, the rendezvous included, fails after `timeout_ms`.
char *stoker_c10d_gloo_new(const char *address, int port, int rank, int world,
                           long long timeout_ms, StokerProcessGroup **out) {
  return guarded([&] {
    const auto timeout = std::chrono::milliseconds(timeout_ms);
    auto store = store_of(address, port, rank, world, timeout);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    // As torch.distributed: GLOO_SOCKET_IFNAME names the network interface to use (on
    // machines whose host name resolves to a loopback address, say).
    const char *interface = std::getenv("GLOO_SOCKET_IFNAME");
    options->devices.push_back(
        interface != nullptr && *interface != '\0'
            ? c10d::ProcessGroupGloo::createDeviceForInterface(std::string(interface))
            : c10d::ProcessGroupGloo::createDefaultDevice());
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, options);
    *out = new StokerProcessGroup{std::move(group), c10::Device(c10::kCPU)};
  });
}

// Whether this build has the NCCL process group.
int stoker_c10d_has_nccl() {
#ifdef STOKER_NCCL
  return 1;
#else
  return 0;
#endif
}

#ifdef STOKER_NCCL
// An NCCL process group of `world` processes, this one `rank`, on CUDA device `device`; the
// rendezvous as for Gloo. NCCL's watchdog ends a collective that takes longer than `timeout_ms`.
char *stoker_c10d_nccl_new(const char *address, int port, int rank, int world,
                           long long timeout_ms, int device, StokerProcessGroup **out) {
  return guarded([&] {
    const auto timeout = std::chrono::milliseconds(timeout_ms);
    auto store = store_of(address, port, rank, world, timeout);
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    const c10::Device cuda(c10::kCUDA, static_cast<c10::DeviceIndex>(device));
    // The constructor says plainly when this machine has no GPU; then the process's current
    // device is set, as torch.cuda.set_device(local_rank) does in a training script.
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, options);
    c10::cuda::set_device(cuda.index());
    // As init_process_group(device_id=...): the group is bound to its device and its
    // communicator made now, so a missing peer fails here, at set-up.
    group->setBoundDeviceId(cuda);
    group->eagerConnectSingleDevice(cuda);
    *out = new StokerProcessGroup{std::move(group), cuda};
  });
}
#endif

void stoker_c10d_free(StokerProcessGroup *group) {
  if (sync_group == group->group) {
    sync_group.reset();
  }
  // As destroy_process_group(): NCCL's communicators are finished and destroyed rather than
  // aborted by the destructor (Gloo's shutdown does nothing). Freeing reports no error.
  try {
    group->group->shutdown();
  } catch (...) {
  }
  delete group;
}

// Makes `group` the one sync_batchnorm reduces over (null: none).
void stoker_c10d_set_sync_group(StokerProcessGroup *group) {
  sync_group = group != nullptr ? group->group : c10::intrusive_ptr<c10d::Backend>();
}

// Whether sync_batchnorm has a process group.
int stoker_c10d_has_sync_group() { return sync_group ? 1 : 0; }

// `x` summed over the sync_batchnorm group, differentiably (see AllReduceSum), into `*out`.
char *stoker_c10d_sync_sum(const Tensor *x, Tensor **out) {
  *out = nullptr;
  return guarded([&] { *out = new Tensor(AllReduceSum::apply(*x)); });
}


// Reduces `tensors` element-wise over the processes, in place (one all-reduce of their
// flattened bucket): their sum when `op` is 0, their maximum when it is 1; waits for the result.
char *stoker_c10d_all_reduce(StokerProcessGroup *group, const Tensor *const *tensors, int n,
                             int op) {
  return guarded([&] {
    if (n == 0) {
      return;
    }
    std::vector<Tensor> list{bucket_of(tensors, n, group->device)};
    c10d::AllreduceOptions options;
    options.reduceOp = op == 1 ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;
    group->group->allreduce(list, options)->wait();
    unbucket(list[0], tensors, n);
  });
}

// Copies rank `root`'s `tensors` into every process's, in place.
char *stoker_c10d_broadcast(StokerProcessGroup *group, const Tensor *const *tensors, int n,
                            int root) {
  return guarded([&] {
    if (n == 0) {
      return;
    }
    std::vector<Tensor> list{bucket_of(tensors, n, group->device)};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    group->group->broadcast(list, options)->wait();
    unbucket(list[0], tensors, n);
  });
}

// Waits until every process reached this call.
char *stoker_c10d_barrier(StokerProcessGroup *group) {
  return guarded([&] {
    c10d::BarrierOptions options;
    if (group->device.is_cuda()) {
      options.device_ids = {group->device.index()};
    }
    group->group->barrier(options)->wait();
  });
}

} // extern "C"
