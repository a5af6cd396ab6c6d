"""Plain PyTorch reference of bench/configs/cnn1d.yaml (stoker's CNN1d on BearingSignals).

CNN1d as plugins/bearing-fault/src/cnn1d.rs: blocks of Conv1d (channels 16, 32, 64, 64; kernels
64, 3, 3, 3; strides 8, 1, 1, 1; padding kernel // 2, with bias), BatchNorm1d, ReLU, MaxPool1d(2);
then the mean over time, dropout 0.2 and a Linear to 4 classes. Input [batch, 2048], unsqueezed to
one channel. Cross entropy; Adam lr 1e-3; batch 32; 4 epochs.

The data: stoker's config generates 4 speeds x 4 loads x (3 faulty classes x 3 severities + the
healthy class repeated once per severity) x 8 signals per condition = 1536 signals of 2048 values,
all for training (48 steps per epoch), 384 per class. Here the signals are random normal values
of the same shape and count, with the same balanced labels: the speed does not depend on them.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import parse_args, train


class Block(nn.Module):
    def __init__(self, cin, cout, kernel, stride):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, stride=stride, padding=kernel // 2)
        self.norm = nn.BatchNorm1d(cout)
        self.pool = nn.MaxPool1d(2)

    def forward(self, x):
        return self.pool(F.relu(self.norm(self.conv(x))))


class CNN1d(nn.Module):
    def __init__(self, channels, kernels, strides, n_classes, dropout, in_channels=1):
        super().__init__()
        cins = [in_channels] + channels[:-1]
        self.blocks = nn.ModuleList(Block(*b) for b in zip(cins, channels, kernels, strides))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels[-1], n_classes)

    def forward(self, x):
        x = x.unsqueeze(1)
        for block in self.blocks:
            x = block(x)
        return self.classifier(self.dropout(x.mean(dim=2)))


def main():
    args = parse_args(__doc__, epochs=4)
    g = torch.Generator().manual_seed(args.seed)
    n, length = 4 * 4 * (3 * 3 + 3) * 8, 2048
    x = torch.randn(n, length, generator=g)
    y = torch.arange(4).repeat_interleave(n // 4)
    model = CNN1d([16, 32, 64, 64], [64, 3, 3, 3], [8, 1, 1, 1], n_classes=4, dropout=0.2).to(args.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train("cnn1d", model, optimizer, F.cross_entropy, x, y, 32, args)


if __name__ == "__main__":
    main()
