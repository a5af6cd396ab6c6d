"""Plain PyTorch FNO on Darcy 16x16: the reference for configs/darcy_fno.yaml.

The same protocol as the stoker config: FNO2d (modes 8x8, width 32, 4 Fourier layers,
projection 128, x/y grid appended), 1000 training samples of darcy_train_16, batch 20 shuffled
every epoch, Adam (lr 1e-3, L2 weight decay 1e-4), cosine annealing per epoch to 0 over 100
epochs, relative L2 loss (per sample, mean over the batch). Each epoch validates on darcy_test_16;
the weights of the best epoch are tested on darcy_test_16 and, zero-shot, on darcy_test_32.

    python bench/reference/fno_darcy.py [--epochs 100] [--seed 0] [--threads N] [--json out.json]
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = Path(__file__).resolve().parents[2] / "data" / "fno"


class SpectralConv2d(nn.Module):
    """Li et al.'s spectral convolution: weights1 for the non-negative first-axis frequencies,
    weights2 for the negative ones, modes2 frequencies of the real transform's axis."""

    def __init__(self, cin, cout, modes1, modes2):
        super().__init__()
        self.modes1, self.modes2 = modes1, modes2
        scale = 1 / (cin * cout)
        self.weights1 = nn.Parameter(scale * torch.rand(cin, cout, modes1, modes2, dtype=torch.cfloat))
        self.weights2 = nn.Parameter(scale * torch.rand(cin, cout, modes1, modes2, dtype=torch.cfloat))

    def forward(self, x):
        b, _, n1, n2 = x.shape
        x_ft = torch.fft.rfft2(x)
        out_ft = torch.zeros(b, self.weights1.shape[1], n1, n2 // 2 + 1, dtype=torch.cfloat, device=x.device)
        m1, m2 = self.modes1, self.modes2
        out_ft[:, :, :m1, :m2] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, :m1, :m2], self.weights1)
        out_ft[:, :, -m1:, :m2] = torch.einsum("bixy,ioxy->boxy", x_ft[:, :, -m1:, :m2], self.weights2)
        return torch.fft.irfft2(out_ft, s=(n1, n2))


class FNO2d(nn.Module):
    def __init__(self, modes=8, width=32, layers=4, projection=128):
        super().__init__()
        self.lift = nn.Linear(3, width)
        self.spectral = nn.ModuleList(SpectralConv2d(width, width, modes, modes) for _ in range(layers))
        self.pointwise = nn.ModuleList(nn.Linear(width, width) for _ in range(layers))
        self.project_hidden = nn.Linear(width, projection)
        self.project_out = nn.Linear(projection, 1)

    def forward(self, a):
        b, n1, n2 = a.shape
        gx = torch.linspace(0, 1, n1, device=a.device).view(1, n1, 1, 1).expand(b, n1, n2, 1)
        gy = torch.linspace(0, 1, n2, device=a.device).view(1, 1, n2, 1).expand(b, n1, n2, 1)
        h = self.lift(torch.cat([a.unsqueeze(-1), gx, gy], dim=-1))
        last = len(self.spectral) - 1
        for i, (k, w) in enumerate(zip(self.spectral, self.pointwise)):
            h = k(h.permute(0, 3, 1, 2)).permute(0, 2, 3, 1) + w(h)
            if i < last:
                h = F.gelu(h)
        return self.project_out(F.gelu(self.project_hidden(h))).squeeze(-1)


def relative_l2(pred, y):
    """Per-sample ||pred - y|| / ||y||, shape [batch]."""
    diff = (pred - y).flatten(1).norm(dim=1)
    return diff / y.flatten(1).norm(dim=1)


def load(name):
    d = np.load(DATA / f"{name}.npz")
    return torch.from_numpy(d["x"]).float(), torch.from_numpy(d["y"]).float()


@torch.no_grad()
def evaluate(model, x, y, batch=20):
    model.eval()
    errors = torch.cat([relative_l2(model(x[i:i + batch]), y[i:i + batch]) for i in range(0, len(x), batch)])
    return errors.mean().item()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x, y = load("darcy_train_16")
    x16, y16 = load("darcy_test_16")
    x32, y32 = load("darcy_test_32")
    model = FNO2d()
    params = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs, eta_min=0.0)
    batch = 20
    best, best_state = math.inf, None
    started = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x))
        total = 0.0
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            loss = relative_l2(model(x[idx]), y[idx]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        scheduler.step()
        val = evaluate(model, x16, y16)
        if val < best:
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
        print(f"epoch {epoch + 1:3d}/{args.epochs}  train_rel_l2 {total / len(x):.4f}  val_rel_l2 {val:.4f}", flush=True)
    seconds = time.perf_counter() - started
    last16, last32 = evaluate(model, x16, y16), evaluate(model, x32, y32)
    model.load_state_dict(best_state)
    results = {
        "parameters": params,
        "epochs": args.epochs,
        "seconds": round(seconds, 1),
        "test16_rel_l2_best": evaluate(model, x16, y16),
        "test32_rel_l2_best": evaluate(model, x32, y32),
        "test16_rel_l2_last": last16,
        "test32_rel_l2_last": last32,
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
