"""Plain PyTorch reference of bench/configs/decoder.yaml (stoker's FluidDecoder on Burgers).

FluidDecoder as plugins/fluid-dynamics/src/decoder.rs: each time step's field (16 points) is a
token; a Linear embedding plus a learned position embedding [max_len 64, 64]; 3 pre-norm
transformer encoder layers (d_model 64, 4 heads, feed-forward 256 with GELU, dropout 0, layer
norm eps 1e-5, no final norm) with a causal mask; a Linear head to 16 points, added to the input
step (predict_delta: the model predicts the change per step). Data as trajectories.rs: the first
1000 trajectories of `u` in data/fno/burgers_lowres.npz ([1200, 17, 16]), x = steps 0..15,
y = steps 1..16, all for training, batch 32 (32 steps per epoch). MSE; AdamW lr 1e-3, weight
decay 1e-4; 4 epochs.

Deliberate differences: PyTorch's nn.TransformerEncoderLayer packs the query, key and value
projections in one in_proj_weight [192, 64] (stoker/Burn: three Linear [64, 64]; the same count).
Both run the attention itself as scaled_dot_product_attention (stoker through
stoker::native::causal_self_attention).
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import ROOT, parse_args, train


class FluidDecoder(nn.Module):
    def __init__(self, points, d_model=64, n_heads=4, n_layers=3, d_ff=None, dropout=0.0, max_len=64,
                 predict_delta=True):
        super().__init__()
        self.embed = nn.Linear(points, d_model)
        self.position = nn.Parameter(0.02 * torch.randn(max_len, d_model))
        layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff or 4 * d_model, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, points)
        self.predict_delta = predict_delta

    def forward(self, steps):
        k = steps.shape[1]
        tokens = self.embed(steps) + self.position[:k]
        mask = nn.Transformer.generate_square_subsequent_mask(k, device=steps.device)
        out = self.head(self.blocks(tokens, mask=mask, is_causal=True))
        return steps + out if self.predict_delta else out


def main():
    args = parse_args(__doc__, epochs=4)
    u = torch.from_numpy(np.load(ROOT / "data/fno/burgers_lowres.npz")["u"][:1000]).float()
    x, y = u[:, :-1], u[:, 1:]
    model = FluidDecoder(points=u.shape[2], d_model=64, n_heads=4, n_layers=3, dropout=0.0).to(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    train("decoder", model, optimizer, F.mse_loss, x, y, 32, args)


if __name__ == "__main__":
    main()
