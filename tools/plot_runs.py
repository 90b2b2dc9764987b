#!/usr/bin/python3
"""plot_runs.py — learning curves of shardrec runs as a PNG.

    tools/plot_runs.py RUN_DIR... -o curves.png [--x step|epoch|time] [--metric ndcg@100]

One figure with two panels: the training loss (the windowed means of the
`train` records, and the epoch means) and a validation metric (the `valid`
records), one colour per run, against the optimizer step, the epoch or the
training time in seconds. Records a resume superseded are skipped. Reads
metrics.jsonl only (docs/metrics.md); needs matplotlib (Debian's
python3-matplotlib, which cluster/install-deps.sh installs).
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

X_KEYS = {"step": ("step", "optimizer step"), "epoch": ("epoch", "epoch"), "time": ("total_train_s", "training time (s)")}


def read_records(run_dir):
    """The records of a run's metrics.jsonl that no resume superseded."""
    path = os.path.join(run_dir, "metrics.jsonl")
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"plot_runs: {path}:{number}: not JSON ({e})")
            if not r.get("superseded"):
                records.append(r)
    return records


def select_metric(run_dir, records):
    """The metric the run selected its model by: train.select_metric of its
    config.yaml, else the first metric of its validation records."""
    try:
        with open(os.path.join(run_dir, "config.yaml")) as f:
            for line in f:
                key, _, value = line.strip().partition(":")
                if key == "select_metric" and value.strip():
                    return value.strip().strip('"')
    except OSError:
        pass
    for r in records:
        if r["type"] == "valid":
            for key in r:
                if "@" in key:
                    return key
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories (each with a metrics.jsonl)")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write")
    parser.add_argument("--x", choices=sorted(X_KEYS), default="step", help="horizontal axis (default: step)")
    parser.add_argument("--metric", help="validation metric (default: the first run's train.select_metric)")
    parser.add_argument("--size", default="10x4", help="figure size in inches, WxH (default 10x4, at 100 dpi)")
    args = parser.parse_args(argv)
    width, height = (float(v) for v in args.size.split("x"))
    x_key, x_label = X_KEYS[args.x]

    fig, (loss_ax, valid_ax) = plt.subplots(1, 2, figsize=(width, height), dpi=100)
    metric = args.metric
    for i, run in enumerate(args.runs):
        records = read_records(run)
        name = os.path.basename(os.path.normpath(run))
        colour = f"C{i % 10}"
        metric = metric or select_metric(run, records)
        train = [r for r in records if r["type"] == "train"]
        epochs = [r for r in records if r["type"] == "epoch"]
        valid = [r for r in records if r["type"] == "valid" and metric in r]
        if train:
            loss_ax.plot([r[x_key] for r in train], [r["loss"] for r in train], color=colour, alpha=0.35, lw=1)
        if epochs:
            loss_ax.plot([r[x_key] for r in epochs], [r["loss"] for r in epochs], color=colour, marker="o", ms=3,
                         lw=1.5, label=name)
        if valid:
            valid_ax.plot([r[x_key] for r in valid], [r[metric] for r in valid], color=colour, marker="o", ms=3,
                          lw=1.5, label=name)
        if not (train or epochs or valid):
            print(f"plot_runs: {run}: no train, epoch or valid records", file=sys.stderr)
    loss_ax.set(xlabel=x_label, ylabel="train loss", title="training loss (epoch means; faint: windows)")
    valid_ax.set(xlabel=x_label, ylabel=metric or "", title=f"validation {metric or ''}")
    for ax in (loss_ax, valid_ax):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.output)
    print(args.output)


if __name__ == "__main__":
    main()
