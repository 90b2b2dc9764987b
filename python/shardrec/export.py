"""A `shardrec export` file (README "Exporting embeddings"): L2-normalised
item and user embeddings whose dot product is the model's score."""

import numpy as np

from . import _h5
from .dataset import read_raw_ids

SPLIT_NAMES = ("train", "valid", "test")


class Export:
    """item_embeddings (n_items, d), item_ids, raw_item_ids (None unless the
    dataset had /ids); user_embeddings (n_users, d), user_ids, user_split
    (0 train, 1 valid, 2 test), raw_user_ids; attrs (the root attributes)."""

    def __init__(self, path):
        self.path = path
        with _h5.open_file(path) as f:
            self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            self.item_embeddings = _h5.read(f, "/items/embeddings")
            self.item_ids = _h5.read(f, "/items/ids")
            self.raw_item_ids = read_raw_ids(f, "/items/raw_ids")
            self.user_embeddings = _h5.read(f, "/users/embeddings")
            self.user_ids = _h5.read(f, "/users/ids")
            self.user_split = _h5.read(f, "/users/split")
            self.raw_user_ids = read_raw_ids(f, "/users/raw_ids")

    def users_of(self, split):
        """Row numbers of the users exported from split "train", "valid" or "test"."""
        return np.flatnonzero(self.user_split == SPLIT_NAMES.index(split))

    def scores(self, rows):
        """(len(rows), n_items) scores of the given user rows."""
        return self.user_embeddings[np.asarray(rows)] @ self.item_embeddings.T


def open_export(path):
    return Export(path)
