"""Plain PyTorch reference of bench/configs/mlp.yaml (stoker's MLP on SyntheticRegression).

MLP sizes [32, 128, 128, 1] with ReLU between layers (no dropout), as
crates/stoker-models/src/mlp.rs; 16384 samples, all for training, batch 64 (256 steps per
epoch); MSE; Adam lr 1e-3 (no weight decay); 4 epochs.

The data follows stoker's SyntheticRegression (x ~ N(0, I), y = tanh(x A) b + 0.05 noise, 16
hidden units), drawn from torch's generator, so the values differ from stoker's but not the
shapes or the work.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import parse_args, train


class MLP(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x):
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = F.relu(x)
        return x


def synthetic_regression(n, features, hidden=16, noise=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(features, hidden, generator=g) / features ** 0.5
    b = torch.randn(hidden, 1, generator=g) / hidden ** 0.5
    x = torch.randn(n, features, generator=g)
    y = torch.tanh(x @ a) @ b + noise * torch.randn(n, 1, generator=g)
    return x, y


def main():
    args = parse_args(__doc__, epochs=4)
    x, y = synthetic_regression(16384, 32, seed=args.seed)
    model = MLP([32, 128, 128, 1]).to(args.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train("mlp", model, optimizer, F.mse_loss, x, y, 64, args)


if __name__ == "__main__":
    main()
