"""Top-K ranking metrics, exactly as `shardrec eval` computes them
(include/shardrec/metrics.h, methods.md section 1).

  recall@K       hits@K / min(K, |held-out|)
  recall_plain@K hits@K / |held-out|
  ndcg@K         DCG@K / IDCG@K, binary gains, IDCG over min(K, |held-out|)
  mrr@K          1 / rank of the first held-out item in the top K (0 if none)

Fold-in items are excluded from the ranking; ties go to the lower item index;
NaN ranks last, and excluded or NaN entries never count as hits. Users with
no held-out item count in no metric."""

import re

import numpy as np

KINDS = ("recall", "recall_plain", "ndcg", "mrr")


def parse(name):
    """"ndcg@100" -> ("ndcg", 100)."""
    m = re.fullmatch(r"([A-Za-z_]+)@([0-9]+)", name)
    if not m or m.group(1).lower() not in KINDS or int(m.group(2)) < 1:
        raise ValueError("unknown metric '%s': expected recall@K, recall_plain@K, ndcg@K or mrr@K "
                         "with K a positive integer" % name)
    return m.group(1).lower(), int(m.group(2))


def top_k(scores, k):
    """(R, k) item ids ranked best first: higher score first, ties to the
    lower index, NaN after everything (also -inf)."""
    order = np.argsort(-scores, axis=1, kind="stable")  # -NaN is NaN: sorts last
    return order[:, :k]


def user_value(kind, k, top, n_top, heldout):
    """One user's metric value: top = ranked item ids of which the first n_top
    are eligible (finite score), heldout = the user's held-out items."""
    depth = min(n_top, k)
    hit = np.isin(top[:depth], heldout)
    ideal = min(len(heldout), k)
    if kind == "mrr":
        first = np.flatnonzero(hit)
        return 1.0 / (first[0] + 1) if len(first) else 0.0
    if kind == "recall":
        return hit.sum() / ideal
    if kind == "recall_plain":
        return hit.sum() / len(heldout)
    discounts = 1.0 / np.log2(np.arange(depth) + 2.0)
    return float((hit * discounts).sum() / (1.0 / np.log2(np.arange(ideal) + 2.0)).sum())


class Metrics:
    """Sums of metric values over users, as the C accumulator keeps them."""

    def __init__(self, names):
        self.names = list(names)
        self.specs = [parse(n) for n in self.names]
        self.sums = np.zeros(len(self.specs))
        self.n_users = 0

    def add(self, scores, foldin, heldout):
        """Ranks R users: scores (R, n_items) (modified: fold-in set to -inf),
        foldin and heldout CSRs of R rows."""
        scores[foldin.row_of_entries(), foldin.indices] = -np.inf
        depth = min(max(k for _, k in self.specs), scores.shape[1])
        top = top_k(scores, depth)
        for r in range(scores.shape[0]):
            items = heldout.row(r)
            if len(items) == 0:
                continue
            top_scores = scores[r, top[r]]
            eligible = top_scores > -np.inf  # False for -inf and NaN
            n_top = int(np.argmin(eligible)) if not eligible.all() else depth
            for i, (kind, k) in enumerate(self.specs):
                self.sums[i] += user_value(kind, k, top[r], n_top, items)
            self.n_users += 1

    def means(self):
        """{name: mean over evaluated users} (0 when none was evaluated)."""
        return {n: (s / self.n_users if self.n_users else 0.0) for n, s in zip(self.names, self.sums)}


def evaluate(model, split, names, batch_size=1000):
    """The metrics of `model` on an EvalSplit, in batches of users."""
    m = Metrics(names)
    for b in range(0, split.n_users, batch_size):
        e = min(b + batch_size, split.n_users)
        foldin = split.foldin.rows(b, e)
        scores = np.asarray(model.score(foldin, split.user_ids[b:e]), dtype=np.float64)
        m.add(scores, foldin, split.heldout.rows(b, e))
    return m
