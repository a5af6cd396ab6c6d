"""Shared harness of the plain-PyTorch speed references that `cargo xtask bench` runs beside stoker.

Each workload script (mlp.py, fno2d.py, cnn1d.py, decoder.py) builds its model, data, loss and
optimizer and calls `train`, a training loop written as a researcher would by hand, mirroring what
stoker's trainer does for the same config:

- all data held as tensors on the device before training;
- each epoch a fresh order, torch.randperm with a CPU generator seeded seed + epoch, moved to the
  device; batches are index_select of the device tensors, the last partial batch included;
- each step: forward, loss, zero_grad(set_to_none=True), backward, step; every 50 optimizer steps
  the loss is read with loss.item() (stoker logs it every 50 steps, which syncs the same way);
- each epoch timed with time.perf_counter (with torch.cuda.synchronize on CUDA at both ends).

Started by torchrun (`cargo xtask bench --nproc N`), it is PyTorch's data-parallel training as
a user writes it: the gloo process group, the model in DistributedDataParallel, each epoch's
order sharded by DistributedSampler's rule (padded to a multiple of the world size, rank r takes
positions r, r + world, ...); the batch size is per process, and only rank 0 prints the result.

Stdout gets exactly one JSON line:
{"workload", "parameters", "batch_size", "steps_per_epoch", "epoch_seconds", "peak_device_bytes",
"final_loss"}; messages go to stderr. The harness drops the first epoch (warm-up).

    python bench/reference/<workload>.py [--device cpu|cuda] [--epochs N] [--limit-batches K]
                                         [--threads T] [--seed S] [--precision P]

`--precision bf16-mixed | 16-mixed` is PyTorch's automatic mixed precision as its documentation
shows it: the forward pass and the loss under torch.autocast(device, dtype=bfloat16 | float16),
and for float16 a torch.amp.GradScaler (scale, backward, step, update).
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

ROOT = Path(__file__).resolve().parents[2]
LOG_EVERY = 50


def parse_args(doc, epochs, extra=None):
    """The common command line; `epochs` is the config's max_epochs; `extra(parser)` adds a
    workload's own arguments."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    if extra:
        extra(parser)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--limit-batches", type=int, help="at most this many steps per epoch")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=["32-true", "bf16-mixed", "16-mixed"], default="32-true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.device = torch.device(args.device)
    return args


def log(message):
    print(message, file=sys.stderr, flush=True)


def count_parameters(model):
    """Trainable values; a complex parameter counts as two (real and imaginary parts)."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters() if p.requires_grad)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(name, model, optimizer, loss_fn, x, y, batch_size, args):
    """Trains `model` on (x, y) for args.epochs epochs and prints the JSON line."""
    device = args.device
    x, y = x.to(device), y.to(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    parameters = count_parameters(model)
    if world > 1:
        dist.init_process_group("gloo")
        model = DistributedDataParallel(model)
    total = x.shape[0]
    n = math.ceil(total / world)
    steps = math.ceil(n / batch_size)
    if args.limit_batches:
        steps = min(steps, args.limit_batches)
    model.train()
    amp_dtype = {"32-true": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}[args.precision]
    scaler = torch.amp.GradScaler(device.type) if args.precision == "16-mixed" else None
    epoch_seconds, loss, step = [], None, 0
    for epoch in range(args.epochs):
        sync(device)
        started = time.perf_counter()
        generator = torch.Generator().manual_seed(args.seed + epoch)
        order = torch.randperm(total, generator=generator)
        if world > 1:
            order = torch.cat([order, order[: n * world - total]])[rank::world]
        order = order.to(device)
        for i in range(steps):
            idx = order[i * batch_size:(i + 1) * batch_size]
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = loss_fn(model(x.index_select(0, idx)), y.index_select(0, idx))
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            step += 1
            if step % LOG_EVERY == 0:
                loss.item()
        sync(device)
        epoch_seconds.append(time.perf_counter() - started)
        if rank == 0:
            log(f"{name}: epoch {epoch + 1}/{args.epochs}  {steps} steps  loss {loss.item():.4f}  "
                f"{epoch_seconds[-1]:.3f}s")
    if world > 1:
        dist.destroy_process_group()
        if rank != 0:
            return
    print_result(name, parameters, batch_size, steps, epoch_seconds, device, loss)


def print_result(name, parameters, batch_size, steps, epoch_seconds, device, loss):
    """Prints the one JSON line the harness reads."""
    result = {
        "workload": name,
        "parameters": parameters,
        "batch_size": batch_size,
        "steps_per_epoch": steps,
        "epoch_seconds": epoch_seconds,
        "peak_device_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        "final_loss": loss.item() if loss is not None else None,
    }
    print(json.dumps(result), flush=True)
