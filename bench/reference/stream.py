"""Plain PyTorch reference of bench/configs/stream.yaml: an MLP trained on data read in place.

The data is a folder of two .npy files that `cargo xtask bench` generates (x: float32
[N, 2048], y: float32 [N, 1]); stoker reads the same files. PyTorch reads them as its users do
when the data is larger than memory: np.load(mmap_mode="r"), a Dataset whose item is a whole
batch of rows (one fancy-indexing read per batch, not 256 single-row reads), and a DataLoader
over a shuffled BatchSampler with the same workers (persistent, prefetch_factor 2) and batch
size as stoker. MLP sizes [2048, 64, 1] with ReLU, MSE, Adam lr 1e-3; 500 steps per epoch (the
config's limit_train_batches; --limit-batches sets it); the loss read every 50 steps, as stoker
logs it.

Stdout gets one JSON line, common.py's `print_result`.
"""

import itertools
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

from common import LOG_EVERY, count_parameters, log, parse_args, print_result, sync


class MappedRows(Dataset):
    """Rows of memory-mapped .npy arrays; an item is the batch of rows at a list of indices."""

    def __init__(self, folder):
        self.x = np.load(Path(folder) / "x.npy", mmap_mode="r")
        self.y = np.load(Path(folder) / "y.npy", mmap_mode="r")

    def __len__(self):
        return self.x.shape[0]

    def __getitem__(self, rows):
        rows = np.asarray(rows)
        return torch.from_numpy(self.x[rows]), torch.from_numpy(self.y[rows])


def main():
    def extra(parser):
        parser.add_argument("--data", required=True, help="the folder of x.npy and y.npy")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--batch-size", type=int, default=256)

    args = parse_args(__doc__, epochs=4, extra=extra)
    device = args.device
    data = MappedRows(args.data)
    model = nn.Sequential(nn.Linear(2048, 64), nn.ReLU(), nn.Linear(64, 1)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(args.seed)
    sampler = BatchSampler(RandomSampler(data, generator=generator), args.batch_size, drop_last=False)
    loader = DataLoader(
        data,
        sampler=sampler,
        batch_size=None,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        prefetch_factor=2 if args.workers > 0 else None,
        pin_memory=device.type == "cuda",
    )
    steps = min(len(sampler), args.limit_batches or 500)
    epoch_seconds, loss, step = [], None, 0
    for epoch in range(args.epochs):
        sync(device)
        started = time.perf_counter()
        for x, y in itertools.islice(loader, steps):
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            loss = F.mse_loss(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step % LOG_EVERY == 0:
                loss.item()
        sync(device)
        epoch_seconds.append(time.perf_counter() - started)
        log(f"stream: epoch {epoch + 1}/{args.epochs}  {steps} steps  loss {loss.item():.4f}  "
            f"{epoch_seconds[-1]:.3f}s")
    print_result("stream", count_parameters(model), args.batch_size, steps, epoch_seconds, device, loss)


if __name__ == "__main__":
    main()
