"""A shardrec dataset file (datasets/README.md): CSR splits, raw ids, features."""

import numpy as np

from . import _h5


class CSR:
    """A sparse matrix in CSR form, as shardrec stores it: row r holds the
    columns indices[indptr[r]:indptr[r+1]] (sorted), with values (None: every
    entry is 1)."""

    def __init__(self, indptr, indices, values, shape):
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int32)
        self.values = None if values is None else np.asarray(values, dtype=np.float32)
        self.shape = (int(shape[0]), int(shape[1]))

    @property
    def n_rows(self):
        return self.shape[0]

    @property
    def nnz(self):
        return len(self.indices)

    def row(self, r):
        """The columns of row r."""
        return self.indices[self.indptr[r]:self.indptr[r + 1]]

    def row_values(self, r):
        """The values of row r (ones for a binary matrix)."""
        if self.values is None:
            return np.ones(self.indptr[r + 1] - self.indptr[r], dtype=np.float32)
        return self.values[self.indptr[r]:self.indptr[r + 1]]

    def data(self):
        """Every entry's value (ones for a binary matrix)."""
        return np.ones(self.nnz, dtype=np.float32) if self.values is None else self.values

    def rows(self, begin, end):
        """Rows [begin, end) as a new CSR."""
        lo, hi = self.indptr[begin], self.indptr[end]
        values = None if self.values is None else self.values[lo:hi]
        return CSR(self.indptr[begin:end + 1] - lo, self.indices[lo:hi], values, (end - begin, self.shape[1]))

    def take(self, row_ids):
        """The rows row_ids, in that order, as a new CSR."""
        row_ids = np.asarray(row_ids, dtype=np.int64)
        lengths = self.indptr[row_ids + 1] - self.indptr[row_ids]
        indptr = np.concatenate(([0], np.cumsum(lengths)))
        entries = np.concatenate([np.arange(self.indptr[r], self.indptr[r + 1]) for r in row_ids]) \
            if len(row_ids) else np.zeros(0, dtype=np.int64)
        values = None if self.values is None else self.values[entries]
        return CSR(indptr, self.indices[entries], values, (len(row_ids), self.shape[1]))

    def row_of_entries(self):
        """The row of every stored entry (nnz)."""
        return np.repeat(np.arange(self.n_rows), np.diff(self.indptr))

    def to_scipy(self):
        """A scipy.sparse.csr_matrix (needs scipy)."""
        import scipy.sparse
        return scipy.sparse.csr_matrix((self.data(), self.indices, self.indptr), shape=self.shape)


def read_csr(f, group):
    g = f[group]
    values = _h5.read(f, group + "/values") if "values" in g else None
    return CSR(_h5.read(f, group + "/indptr"), _h5.read(f, group + "/indices"), values,
               (int(g.attrs["n_rows"]), int(g.attrs["n_cols"])))


class EvalSplit:
    """A validation or test split: user_ids[r] has fold-in row r (the model's
    input, excluded from the ranking) and held-out row r (to predict)."""

    def __init__(self, user_ids, foldin, heldout):
        self.user_ids, self.foldin, self.heldout = user_ids, foldin, heldout

    @property
    def n_users(self):
        return len(self.user_ids)


class Feature:
    """A categorical feature: row e of `values` lists entity e's vocabulary ids;
    `vocab` the label of each id when the file has them (else None)."""

    def __init__(self, name, values, multi_valued, vocab):
        self.name, self.values, self.multi_valued, self.vocab = name, values, multi_valued, vocab


def read_raw_ids(f, obj):
    """Raw ids (int64, or str for string ids), or None when the file has none."""
    if obj not in f:
        return None
    ids = _h5.read(f, obj)
    return ids.astype(str) if ids.dtype.kind == "S" else ids


def _features(f, kind):
    out = {}
    group = "/features/" + kind
    if group not in f:
        return out
    names = list(f[group])  # creation order when tracked (h5py follows it)
    for name in names:
        path = group + "/" + name
        g = f[path]
        vocab = read_raw_ids(f, path + "/vocab")
        out[name] = Feature(name, read_csr(f, path), bool(g.attrs.get("multi_valued", 0)), vocab)
    return out


class Dataset:
    """Everything in a dataset file, read at once.

    train (CSR, rows = train_user_ids), valid and test (EvalSplit), n_users,
    n_items, protocol, raw_user_ids / raw_item_ids (None unless imported),
    item_features / user_features (dicts of Feature, in file order)."""

    def __init__(self, path):
        self.path = path
        with _h5.open_file(path) as f:
            version = int(f.attrs.get("shardrec_schema_version", -1))
            if version != 1:
                raise ValueError("%s: not a shardrec dataset of schema version 1 (found %s)" % (path, version))
            self.n_users = int(f.attrs["n_users"])
            self.n_items = int(f.attrs["n_items"])
            self.protocol = _h5.attr_str(f, "protocol")
            self.train = read_csr(f, "/splits/train")
            self.train_user_ids = _h5.read(f, "/splits/train/user_ids")
            self.valid = self._eval_split(f, "/splits/valid")
            self.test = self._eval_split(f, "/splits/test")
            self.raw_user_ids = read_raw_ids(f, "/ids/users")
            self.raw_item_ids = read_raw_ids(f, "/ids/items")
            self.item_features = _features(f, "item")
            self.user_features = _features(f, "user")

    @staticmethod
    def _eval_split(f, group):
        return EvalSplit(_h5.read(f, group + "/user_ids"), read_csr(f, group + "/foldin"),
                         read_csr(f, group + "/heldout"))

    def split(self, name):
        """"valid" or "test"."""
        if name not in ("valid", "test"):
            raise ValueError("split must be 'valid' or 'test', got %r" % (name,))
        return self.valid if name == "valid" else self.test


def open_dataset(path):
    return Dataset(path)
