"""A shardrec checkpoint (docs/checkpoint.md): parameters, config, history."""

import json

import yaml

from . import _h5


class Checkpoint:
    """model ("multvae", "multdae", "twotower", ...), n_items, config (the
    resolved YAML as nested dicts), params (name -> float32 array, in file
    order), step (optimizer updates; None in a model-only file), train_state
    (its attributes; {} in a model-only file) and history (validation records,
    one dict each)."""

    def __init__(self, path):
        self.path = path
        with _h5.open_file(path) as f:
            if "shardrec_checkpoint_version" not in f.attrs:
                raise ValueError("%s: not a shardrec checkpoint (no shardrec_checkpoint_version)" % path)
            self.model = _h5.attr_str(f, "model")
            self.n_items = int(f.attrs["n_items"])
            self.config_yaml = _h5.attr_str(f, "config_yaml", "")
            self.config = yaml.safe_load(self.config_yaml) or {}
            self.params = {name: _h5.read(f, "/params/" + name) for name in f["/params"]}
            self.step = int(f["/optimizer"].attrs["step"]) if "/optimizer" in f else None
            state = f["/train_state"] if "/train_state" in f else None
            self.train_state = {k: v for k, v in state.attrs.items() if k != "history"} if state else {}
            history = _h5.attr_str(state, "history", "") if state else ""
            self.history = [json.loads(line) for line in history.splitlines() if line.strip()]

    def cfg(self, section, key, default=None):
        """config[section][key], or default when absent."""
        return (self.config.get(section) or {}).get(key, default)


def open_checkpoint(path):
    return Checkpoint(path)
