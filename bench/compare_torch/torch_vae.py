"""PyTorch peers of bench_vae: the Mult-VAE [I -> 600 -> 200 -> 600 -> I] of the
paper's notebook (Liang et al., WWW 2018), trained on the same random sparse
batches (B users, C distinct items each, drawn by the same stride walk).

  --first-layer dense   the notebook: each batch densified (X[idx].toarray()),
                        normalised, dropped out, then a dense (B, I) . (I, 600)
  --first-layer sparse  the first layer as nn.EmbeddingBag(mode="sum") with the
                        normalised, dropped-out values as per-sample weights:
                        the usual PyTorch idiom for a sparse input layer

Prints one line: "steps S wall_ms W cpu_ms C" (per step, warm-up step excluded).
"""
import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_timing import time_steps


def random_batch(rng, batch, items, clicks):
    """(indptr, indices) of B users with `clicks` distinct items each."""
    start = rng.integers(0, items, size=batch)
    stride = items // clicks
    idx = (start[:, None] + stride * np.arange(clicks)[None, :]) % items
    idx.sort(axis=1)
    return np.arange(0, batch * clicks + 1, clicks), idx.reshape(-1)


class MultVAE(nn.Module):
    def __init__(self, items, sparse_first):
        super().__init__()
        self.sparse_first = sparse_first
        if sparse_first:
            self.enc0 = nn.EmbeddingBag(items, 600, mode="sum")
            self.enc0_bias = nn.Parameter(torch.zeros(600))
        else:
            self.enc0 = nn.Linear(items, 600)
        self.enc1 = nn.Linear(600, 400)
        self.dec0 = nn.Linear(200, 600)
        self.dec1 = nn.Linear(600, items)

    def forward(self, x_dense, bag):
        if self.sparse_first:
            indices, offsets, weights = bag
            h = torch.tanh(self.enc0(indices, offsets, per_sample_weights=weights) + self.enc0_bias)
        else:
            h = torch.tanh(self.enc0(x_dense))
        mu, logvar = self.enc1(h).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec1(torch.tanh(self.dec0(z))), mu, logvar


def step(model, opt, indptr, indices, items, beta):
    batch = len(indptr) - 1
    x = torch.zeros(batch, items)  # the notebook's X[idx].toarray(), also the softmax target
    rows = torch.from_numpy(np.repeat(np.arange(batch), np.diff(indptr)))
    cols = torch.from_numpy(indices)
    x[rows, cols] = 1.0
    if model.sparse_first:
        counts = torch.from_numpy(np.diff(indptr)).float()
        values = F.dropout(torch.repeat_interleave(counts.rsqrt(), torch.from_numpy(np.diff(indptr))), 0.5)
        bag = (cols, torch.from_numpy(indptr[:-1]), values)
        logits, mu, logvar = model(None, bag)
    else:
        logits, mu, logvar = model(F.dropout(F.normalize(x), 0.5), None)
    neg_ll = -(F.log_softmax(logits, 1) * x).sum(1).mean()
    kl = (0.5 * (-logvar + logvar.exp() + mu * mu - 1.0)).sum(1).mean()
    loss = neg_ll + beta * kl
    opt.zero_grad()
    loss.backward()
    opt.step()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=20108)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--clicks", type=int, default=73)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--first-layer", choices=["dense", "sparse"], default="dense")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    model = MultVAE(a.items, a.first_layer == "sparse")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = [random_batch(rng, a.batch, a.items, a.clicks) for _ in range(a.steps + 1)]
    time_steps(a.steps, lambda s: step(model, opt, *batches[s], a.items, beta=0.2))


if __name__ == "__main__":
    main()
