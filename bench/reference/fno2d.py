"""Plain PyTorch reference of bench/configs/fno2d.yaml (stoker's FNO2d on Darcy 16x16).

FNO2d modes 8x8, width 32, 4 Fourier layers, projection 128, x/y grid appended: the model class
of fno_darcy.py (1,057,281 parameters, as stoker's); the 1000 samples of
data/fno/darcy_train_16.npz, batch 20 (50 steps per epoch); relative L2 loss (per sample, mean
over the batch, neuraloperator's LpLoss(d=2, p=2)); Adam lr 1e-3 with L2 weight decay 1e-4; 3
epochs, no validation, no scheduler.

Deliberate difference: the spectral convolution uses torch.fft.rfft2 / irfft2 (the normal
PyTorch way, as Li et al.'s code), where stoker multiplies by truncated DFT matrices; the
spectral weights are complex [cin, cout, m1, m2] twice (positive and negative first-axis
frequencies) where stoker holds real and imaginary [2 m1 m2, cin, cout]: the same values.
"""

import numpy as np
import torch

from common import ROOT, parse_args, train
from fno_darcy import FNO2d, relative_l2


def main():
    args = parse_args(__doc__, epochs=3)
    data = np.load(ROOT / "data/fno/darcy_train_16.npz")
    x, y = torch.from_numpy(data["x"]).float(), torch.from_numpy(data["y"]).float()
    model = FNO2d(modes=8, width=32, layers=4, projection=128).to(args.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    train("fno2d", model, optimizer, lambda pred, y: relative_l2(pred, y).mean(), x, y, 20, args)


if __name__ == "__main__":
    main()
