"""Per-phase timings of the plain PyTorch loops, for docs/performance.md's profile table.

Times forward + loss, backward (with zero_grad) and the optimizer step separately with
time.perf_counter over 200 steps (60 for the slower workloads) after 20 warm-up steps, on the
same models, batch sizes and optimizers as mlp.py, cnn1d.py and decoder.py; the CPU kernels
run synchronously, so the phases are exact there.

    python bench/reference/phases.py [--threads T]
"""

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

import cnn1d
import decoder
import mlp


def phases(model, optimizer, loss_fn, x, y, batch_size, steps, warmup=20):
    totals = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    n = x.shape[0]
    for i in range(warmup + steps):
        idx = torch.randint(0, n, (batch_size,))
        xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        a = time.perf_counter()
        loss = loss_fn(model(xb), yb)
        b = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        c = time.perf_counter()
        optimizer.step()
        d = time.perf_counter()
        if i >= warmup:
            totals["forward"] += b - a
            totals["backward"] += c - b
            totals["optimizer"] += d - c
    return {k: round(v / steps * 1e6) for k, v in totals.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = mlp.MLP([32, 128, 128, 1])
    x, y = mlp.synthetic_regression(16384, 32)
    print("mlp", phases(model, torch.optim.Adam(model.parameters(), lr=1e-3), F.mse_loss, x, y, 64, 200))

    model = cnn1d.CNN1d([16, 32, 64, 64], [64, 3, 3, 3], [8, 1, 1, 1], n_classes=4, dropout=0.2)
    x, y = torch.randn(1536, 2048), torch.randint(0, 4, (1536,))
    print("cnn1d", phases(model, torch.optim.Adam(model.parameters(), lr=1e-3), F.cross_entropy, x, y, 32, 60))

    u = torch.tensor(np.load(decoder.ROOT / "data/fno/burgers_lowres.npz")["u"][:1000], dtype=torch.float32)
    model = decoder.FluidDecoder(points=u.shape[2], d_model=64, n_heads=4, n_layers=3, dropout=0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    print("decoder", phases(model, optimizer, F.mse_loss, u[:, :-1], u[:, 1:], 32, 60))


if __name__ == "__main__":
    main()
