"""neuraloperator 0.3.0's FNO on Darcy 16x16: the reference for configs/darcy_neuralop_fno.yaml.

The model is neuraloperator's own `FNO(n_modes=(8, 8), hidden_channels=32, in_channels=3,
out_channels=1)` with every other argument at its default (lifting and projection MLPs of 256,
4 blocks), its grid appended by neuraloperator's `PositionalEmbedding2D`. The protocol is
configs/darcy_fno.yaml's, as in fno_darcy.py: 1000 training samples of darcy_train_16, batch 20
shuffled every epoch, Adam (lr 1e-3, L2 weight decay 1e-4), cosine annealing per epoch to 0 over
100 epochs, relative L2 loss (per sample, mean over the batch) on the pressure normalized by one
mean and standard deviation over every training value (stoker's `gaussian`; neuraloperator's
Darcy loader's `channel-wise` encoding). Validation and test decode the prediction and measure
relative L2 in physical units; the best epoch's weights are tested on darcy_test_16 and,
zero-shot, on darcy_test_32.

neuraloperator 0.3.0 imports wandb (only to log) and torch_harmonics; install it beside torch:
    python -m venv --system-site-packages VENV   # with torch 2.11.0 on its path
    VENV/bin/pip install --no-deps neuraloperator==0.3.0 tensorly tensorly-torch opt-einsum torch-harmonics==0.6.5
    VENV/bin/python bench/reference/neuralop_fno_darcy.py [--epochs 100] [--seed 0] [--json out.json]
"""

import argparse
import json
import math
import sys
import time
import types
from pathlib import Path

import torch

sys.modules.setdefault("wandb", types.ModuleType("wandb"))
from neuralop.datasets.transforms import PositionalEmbedding2D  # noqa: E402
from neuralop.models import FNO  # noqa: E402

# The protocol's data and error, as the plain-PyTorch reference beside this script has them.
from fno_darcy import load, relative_l2  # noqa: E402

class Model(torch.nn.Module):
    """neuraloperator's FNO on fields [batch, n1, n2], the grid appended."""

    def __init__(self):
        super().__init__()
        self.fno = FNO(n_modes=(8, 8), hidden_channels=32, in_channels=3, out_channels=1)
        self.embedding = PositionalEmbedding2D()

    def forward(self, a):
        return self.fno(self.embedding(a.unsqueeze(1)))[:, 0]


@torch.no_grad()
def evaluate(model, x, y, decode, batch=20):
    model.eval()
    errors = torch.cat([relative_l2(decode(model(x[i:i + batch])), y[i:i + batch]) for i in range(0, len(x), batch)])
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
    # One mean and standard deviation over every training value (torch.std, + 1e-5).
    mean, std = y.mean(), y.std() + 1e-5
    encoded = (y - mean) / std
    decode = lambda t: t * std + mean  # noqa: E731
    model = Model()
    params = sum(p.numel() for p in model.parameters())
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
            loss = relative_l2(model(x[idx]), encoded[idx]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        scheduler.step()
        val = evaluate(model, x16, y16, decode)
        if val < best:
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
        print(f"epoch {epoch + 1:3d}/{args.epochs}  train_loss {total / len(x):.4f}  val_rel_l2 {val:.4f}", flush=True)
    seconds = time.perf_counter() - started
    last16, last32 = evaluate(model, x16, y16, decode), evaluate(model, x32, y32, decode)
    model.load_state_dict(best_state)
    results = {
        "parameters": params,
        "epochs": args.epochs,
        "seconds": round(seconds, 1),
        "test16_rel_l2_best": evaluate(model, x16, y16, decode),
        "test32_rel_l2_best": evaluate(model, x32, y32, decode),
        "test16_rel_l2_last": last16,
        "test32_rel_l2_last": last32,
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
