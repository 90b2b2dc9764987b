"""PyTorch peer of bench_two_tower (one rank): the SSL two-tower of
docs/two_tower.md with its defaults, trained on synthetic data of the same
shape (users, items, ~25 clicks per user, Zipf popularity, item features
cluster / tags (multi-valued) / pop_bucket).

  query tower: mean bag of the user's other items (32) -> 256 -> ReLU -> 64 -> L2 norm
  item tower:  [item_id | cluster | mean bag of tags | pop_bucket] (4 x 32) -> 256 -> ReLU -> 64 -> L2 norm
  main loss:   batch softmax over the N pairs, s(q_i, x_j) / tau - log p_j, p from the streaming
               frequency estimate (alpha 0.05)
  SSL:         M = N items drawn uniformly, two views with complementary feature masking (a masked
               feature is its learned default embedding), value dropout 0.1 on tags, InfoNCE,
               weight 0.2; tau 0.1 for both; Adam lr 1e-3

Prints one line: "steps S wall_ms W cpu_ms C" (per step, warm-up step excluded).
"""
import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_timing import time_steps

E, HIDDEN, D, TAU, SSL_WEIGHT, VALUE_DROPOUT, LOGQ_ALPHA = 32, 256, 64, 0.1, 0.2, 0.1, 0.05
CLUSTERS, TAGS, POP_BUCKETS = 16, 16, 10


def synth(rng, users, items, mean_clicks=25.0):
    """User rows (indptr, indices), Zipf popularity, and the item features."""
    weights = 1.0 / (1.0 + np.arange(items))
    weights /= weights.sum()
    lengths = np.minimum(5 + rng.geometric(1.0 / (mean_clicks - 4.0), size=users) - 1, items)
    rows = [np.unique(rng.choice(items, size=n, p=weights)) for n in lengths]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    cluster = rng.integers(0, CLUSTERS, size=items)
    n_tags = rng.integers(1, 4, size=items)
    tag_indptr = np.concatenate([[0], np.cumsum(n_tags)])
    tags = rng.integers(0, TAGS, size=tag_indptr[-1])
    pop_bucket = np.arange(items) * POP_BUCKETS // items
    return indptr, np.concatenate(rows), cluster, tag_indptr, tags, pop_bucket


def gather_bags(indptr, indices, rows):
    """Flattened values and offsets of rows `rows` of a CSR matrix."""
    starts, lengths = indptr[rows], indptr[rows + 1] - indptr[rows]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    flat = np.repeat(starts - offsets, lengths) + np.arange(lengths.sum())
    return indices[flat], offsets, lengths


class TwoTower(nn.Module):
    def __init__(self, items):
        super().__init__()
        self.history = nn.EmbeddingBag(items, E, mode="mean")
        self.query_mlp = nn.Sequential(nn.Linear(E, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, D))
        self.item_id = nn.Embedding(items, E)
        self.cluster = nn.Embedding(CLUSTERS, E)
        self.tags = nn.EmbeddingBag(TAGS, E, mode="mean")
        self.pop = nn.Embedding(POP_BUCKETS, E)
        self.defaults = nn.Parameter(torch.zeros(4, E))  # a masked feature's embedding
        self.item_mlp = nn.Sequential(nn.Linear(4 * E, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, D))

    def query(self, hist, offsets):
        return F.normalize(self.query_mlp(self.history(hist, offsets)), dim=1)

    def item(self, ids, cluster, tags, tag_offsets, pop, masked=(False,) * 4):
        n = len(ids)
        parts = [
            self.item_id(ids),
            self.cluster(cluster),
            self.tags(tags, tag_offsets),
            self.pop(pop),
        ]
        parts = [self.defaults[f].expand(n, E) if masked[f] else parts[f] for f in range(4)]
        return F.normalize(self.item_mlp(torch.cat(parts, dim=1)), dim=1)


class StreamingFrequency:
    """Yi et al. 2019: last step seen A and EMA gap B per item; log p = -log B."""

    def __init__(self, items):
        self.last = np.zeros(items)
        self.gap = np.full(items, float(items))

    def log_prob(self, ids, step):
        uniq = np.unique(ids)
        seen = self.last[uniq] > 0
        self.gap[uniq[seen]] = (1 - LOGQ_ALPHA) * self.gap[uniq[seen]] + LOGQ_ALPHA * (step - self.last[uniq[seen]])
        self.last[uniq] = step
        return torch.from_numpy(-np.log(self.gap[ids])).float()


def item_inputs(data, ids, rng=None):
    _, _, cluster, tag_indptr, tags, pop = data
    t, offsets, lengths = gather_bags(tag_indptr, tags, ids)
    if rng is not None:  # value dropout on the multi-valued feature (every item has a tag)
        keep = rng.random(len(t)) >= VALUE_DROPOUT
        kept = np.add.reduceat(keep, offsets)
        t, offsets = t[keep], np.concatenate([[0], np.cumsum(kept)[:-1]])
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).long()
    return as_t(ids), as_t(cluster[ids]), as_t(t), as_t(offsets), as_t(pop[ids])


def step(model, opt, freq, data, users, targets, step_no, rng, items):
    indptr, indices = data[0], data[1]
    hist, offsets, lengths = gather_bags(indptr, indices, users)
    keep = hist != np.repeat(targets, lengths)  # a pair must not see its own answer
    kept = np.add.reduceat(keep, offsets) if len(hist) else np.zeros(len(users), int)
    hist, offsets = hist[keep], np.concatenate([[0], np.cumsum(kept)[:-1]])
    q = model.query(torch.from_numpy(hist).long(), torch.from_numpy(offsets).long())
    x = model.item(*item_inputs(data, targets))
    logits = q @ x.t() / TAU - freq.log_prob(targets, step_no)[None, :]
    labels = torch.arange(len(targets))
    main = F.cross_entropy(logits, labels)
    ssl_ids = rng.integers(0, items, size=len(targets))
    seed = rng.integers(0, 4)
    in_a = [f == seed or f == (seed + 1) % 4 for f in range(4)]  # CFM picks the seed and its best partner
    z1 = model.item(*item_inputs(data, ssl_ids, rng), masked=in_a)
    z2 = model.item(*item_inputs(data, ssl_ids, rng), masked=[not m for m in in_a])
    ssl = F.cross_entropy(z1 @ z2.t() / TAU, labels)
    loss = main + SSL_WEIGHT * ssl
    opt.zero_grad()
    loss.backward()
    opt.step()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--items", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    data = synth(rng, a.users, a.items)
    indptr = data[0]
    pair_users = np.repeat(np.arange(a.users), np.diff(indptr))
    order = rng.permutation(len(pair_users))
    model = TwoTower(a.items)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    freq = StreamingFrequency(a.items)

    def run_step(s):
        pick = order[(s * a.batch + np.arange(a.batch)) % len(order)]
        step(model, opt, freq, data, pair_users[pick], data[1][pick], s + 1, rng, a.items)

    time_steps(a.steps, run_step)


if __name__ == "__main__":
    main()
