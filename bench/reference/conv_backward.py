"""LibTorch's convolution_backward against Burn's generic convolution backward, on cnn1d's shapes.

Burn 0.22 computes a 1-D convolution's gradients on LibTorch with two convolutions
(burn-backend's ops/modules/conv.rs): a transposed convolution of the output gradient for the
input, and a convolution of the input by the output gradient (batch and channel axes swapped,
dilation = stride) for the weight. PyTorch calls aten::convolution_backward. This times both on
the same libtorch (docs/performance.md, item 6 of the profile):

    python bench/reference/conv_backward.py [--threads 2]
"""

import argparse
import time

import torch
import torch.nn.functional as F


def mean_us(f, n=30):
    for _ in range(3):
        f()
    start = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - start) / n * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    torch.set_num_threads(parser.parse_args().threads)
    batch = 32
    # (in, out, kernel, stride, length); the first block's input needs no gradient.
    for c_in, c_out, k, s, length in [(1, 16, 64, 8, 2048), (16, 32, 3, 1, 128), (32, 64, 3, 1, 64), (64, 64, 3, 1, 32)]:
        p = k // 2
        x, w = torch.randn(batch, c_in, length), torch.randn(c_out, c_in, k)
        g = torch.randn_like(F.conv1d(x, w, stride=s, padding=p))
        x_grad = c_in > 1
        padding_out = (length + 2 * p - k) - (g.shape[2] - 1) * s

        def native():
            return torch.ops.aten.convolution_backward(g, x, w, None, [s], [p], [1], False, [0], 1, [x_grad, True, False])

        def burn():
            gx = F.conv_transpose1d(g, w, stride=s, padding=p, output_padding=padding_out) if x_grad else None
            gw = F.conv1d(x.transpose(0, 1), g.transpose(0, 1), padding=p, dilation=s).transpose(0, 1)
            return gx, gw[:c_out, :c_in, :k]

        (nx, nw), (bx, bw) = native()[:2], burn()
        assert torch.allclose(nw, bw, rtol=1e-3, atol=1e-2) and (not x_grad or torch.allclose(nx, bx, atol=1e-3))
        print(f"conv {c_in}->{c_out} k{k} s{s}: convolution_backward {mean_us(native):.0f} µs, Burn's composition {mean_us(burn):.0f} µs")


if __name__ == "__main__":
    main()
