"""python3 -m shardrec eval CHECKPOINT [--data FILE] [--split valid|test]
[--metrics LIST] [--batch N]: the metrics of `shardrec eval`, computed in
Python, printed in its format."""

import argparse
import sys

from . import evaluate, load_model, open_checkpoint, open_dataset


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m shardrec")
    sub = p.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("eval", help="evaluate a checkpoint on a split, as `shardrec eval` does")
    ev.add_argument("checkpoint")
    ev.add_argument("--data", help="dataset (default: data.path of the checkpoint's config)")
    ev.add_argument("--split", choices=("valid", "test"), default="test")
    ev.add_argument("--metrics", help="comma-separated, e.g. recall@20,ndcg@100 (default: the config's)")
    ev.add_argument("--batch", type=int, default=1000, help="users scored at a time")
    a = p.parse_args(argv)
    ckpt = open_checkpoint(a.checkpoint)
    data = open_dataset(a.data or ckpt.cfg("data", "path"))
    names = a.metrics.split(",") if a.metrics else ckpt.cfg("eval", "metrics")
    m = evaluate(load_model(ckpt, data), data.split(a.split), names, a.batch)
    line = "  ".join("%s %.8f" % (n, v) for n, v in m.means().items())
    print("%-12s %s  (%d users)" % (a.split, line, m.n_users))
    return 0


if __name__ == "__main__":
    sys.exit(main())
