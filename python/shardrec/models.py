"""Scoring users with a trained model, as `shardrec eval` does (methods.md).

load_model(checkpoint, dataset) returns an object whose
score(foldin, user_ids) gives the (R, n_items) evaluation-mode scores of R
users from their fold-in rows (a CSR) and ids (original numbering). The
math is the C code's (src/models/), in float64: results agree with it up to
float32 rounding."""

import numpy as np

L2_EPS = 1e-6  # two-tower output normalisation (two_tower.c)


def _layers(params, prefix):
    """[(weight (in, out), bias (out)), ...] of prefix.0, prefix.1, ..."""
    out = []
    while "%s.%d.weight" % (prefix, len(out)) in params:
        l = len(out)
        out.append((params["%s.%d.weight" % (prefix, l)].astype(np.float64),
                    params["%s.%d.bias" % (prefix, l)].astype(np.float64)))
    if not out:
        raise ValueError("checkpoint has no %s.0.weight" % prefix)
    return out


def _sparse_times(csr, values, weight):
    """(R, out) = the sparse rows (csr's pattern with `values`) times weight (n_cols, out)."""
    out = np.zeros((csr.n_rows, weight.shape[1]))
    if csr.nnz:
        np.add.at(out, csr.row_of_entries(), values[:, None] * weight[csr.indices])
    return out


class MultVAE:
    """Mult-VAE and Mult-DAE: the l2-normalised fold-in row through the
    encoder (tanh between layers; the DAE's output too), z = mu (VAE: the
    first half of the output) or the DAE's code, then the decoder's logits."""

    def __init__(self, ckpt):
        self.is_vae = ckpt.model == "multvae"
        self.encoder = _layers(ckpt.params, "encoder")
        self.decoder = _layers(ckpt.params, "decoder")
        self.n_items = self.decoder[-1][0].shape[1]

    def score(self, foldin, user_ids=None):
        x = foldin.data().astype(np.float64)
        norms = np.sqrt(np.bincount(foldin.row_of_entries(), weights=x * x, minlength=foldin.n_rows))
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        h = None
        for l, (w, b) in enumerate(self.encoder):
            h = (_sparse_times(foldin, x * inv[foldin.row_of_entries()], w) if l == 0 else h @ w) + b
            if l < len(self.encoder) - 1 or not self.is_vae:
                h = np.tanh(h)
        if self.is_vae:
            h = h[:, :h.shape[1] // 2]  # mu
        for l, (w, b) in enumerate(self.decoder):
            h = h @ w + b
            if l < len(self.decoder) - 1:
                h = np.tanh(h)
        return h


class _Tower:
    """One tower: per feature a bag of table rows (mean; the feature's default
    row when the bag is empty), concatenated, through the MLP (ReLU between
    layers), L2-normalised."""

    def __init__(self, params, name, features):
        self.name = name
        self.features = features  # [(feature name, bag function (ids, history) -> CSR)]
        self.tables = [params["%s.%s.table" % (name, f)].astype(np.float64) for f, _ in features]
        self.defaults = [params["%s.%s.default" % (name, f)].astype(np.float64) for f, _ in features]
        self.mlp = _layers(params, name + ".mlp")

    def forward(self, ids, history=None):
        parts = []
        for (_, bag_of), table, default in zip(self.features, self.tables, self.defaults):
            bag = bag_of(ids, history)
            counts = np.diff(bag.indptr)
            summed = np.zeros((bag.n_rows, table.shape[1]))
            if bag.nnz:
                np.add.at(summed, bag.row_of_entries(), table[bag.indices])
            mean = summed / np.maximum(counts, 1)[:, None]
            mean[counts == 0] = default
            parts.append(mean)
        h = np.concatenate(parts, axis=1)
        for l, (w, b) in enumerate(self.mlp):
            h = h @ w + b
            if l < len(self.mlp) - 1:
                h = np.maximum(h, 0.0)
        return h / np.maximum(np.linalg.norm(h, axis=1), L2_EPS)[:, None]


def _id_bag(vocab):
    from .dataset import CSR

    def bag(ids, history):
        ids = np.asarray(ids)
        return CSR(np.arange(len(ids) + 1), ids, None, (len(ids), vocab))
    return bag


def _table_bag(feature):
    return lambda ids, history: feature.values.take(ids)


def _history_bag(ids, history):
    return history


class TwoTower:
    """The two-tower model: score = query embedding . item embedding."""

    def __init__(self, ckpt, dataset):
        query, items = [], []
        for name in ckpt.cfg("model", "query_features", ["history"]):
            if name == "history":
                query.append((name, _history_bag))
            elif name == "user_id":
                query.append((name, _id_bag(dataset.n_users)))
            else:
                query.append((name, _table_bag(self._feature(dataset.user_features, "user", name))))
        for name in ckpt.cfg("model", "item_features", ["item_id", "all"]):
            if name == "all":
                items += [(f.name, _table_bag(f)) for f in dataset.item_features.values()]
            elif name == "item_id":
                items.append((name, _id_bag(dataset.n_items)))
            else:
                items.append((name, _table_bag(self._feature(dataset.item_features, "item", name))))
        self.query = _Tower(ckpt.params, "query", query)
        self.item = _Tower(ckpt.params, "item", items)
        self.n_items = dataset.n_items
        self._item_embeddings = None

    @staticmethod
    def _feature(features, kind, name):
        if name not in features:
            raise ValueError("the dataset has no %s feature '%s' (it has: %s)" % (kind, name, ", ".join(features)))
        return features[name]

    def item_embeddings(self):
        """(n_items, d), computed once."""
        if self._item_embeddings is None:
            self._item_embeddings = self.item.forward(np.arange(self.n_items))
        return self._item_embeddings

    def user_embeddings(self, history, user_ids):
        return self.query.forward(np.asarray(user_ids), history)

    def score(self, foldin, user_ids):
        return self.user_embeddings(foldin, user_ids) @ self.item_embeddings().T


def load_model(ckpt, dataset):
    """A scorer for the checkpoint's model over `dataset` (its items and features)."""
    if ckpt.model in ("multvae", "multdae"):
        return MultVAE(ckpt)
    if ckpt.model == "twotower":
        return TwoTower(ckpt, dataset)
    raise ValueError("%s: cannot score model type %r" % (ckpt.path, ckpt.model))
