#!/usr/bin/python3
"""Renders the fixture runs (tests/fixtures/runs) with tools/plot_runs.py and
checks the PNG: its size, that it is not blank, and that each run's colour
(matplotlib's C0, C1) is drawn. Exit 0 on success, 77 (skipped) without
matplotlib outside CI."""
import os
import subprocess
import sys
import tempfile

source = sys.argv[1]
try:
    import matplotlib.image
    import numpy
except ImportError as e:
    print(f"skipped: {e} (cluster/install-deps.sh installs python3-matplotlib)")
    sys.exit(1 if os.environ.get("CI") else 77)

tool = os.path.join(source, "tools", "plot_runs.py")
runs = [os.path.join(source, "tests", "fixtures", "runs", r) for r in ("a", "b")]
failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


with tempfile.TemporaryDirectory() as tmp:
    for x in ("step", "epoch", "time"):
        png = os.path.join(tmp, f"curves-{x}.png")
        subprocess.run([sys.executable, tool, *runs, "-o", png, "--x", x], check=True)
        image = matplotlib.image.imread(png)  # H x W x 4 floats in [0, 1]
        check(image.shape[:2] == (400, 1000), f"--x {x}: 1000x400 pixels (got {image.shape[1]}x{image.shape[0]})")
        rgb = image[:, :, :3]
        drawn = (rgb < 0.9).any(axis=2).mean()
        check(drawn > 0.02, f"--x {x}: not blank ({drawn:.1%} of the pixels drawn)")
        for name, colour in (("C0", (0x1F, 0x77, 0xB4)), ("C1", (0xFF, 0x7F, 0x0E))):
            near = (numpy.abs(rgb * 255 - numpy.array(colour)) < 30).all(axis=2).sum()
            check(near > 300, f"--x {x}: run {name} drawn ({near} pixels of its colour)")
    one = os.path.join(tmp, "one.png")
    subprocess.run([sys.executable, tool, runs[0], "-o", one, "--metric", "recall@20"], check=True)
    rgb = matplotlib.image.imread(one)[:, :, :3]
    c1 = (numpy.abs(rgb * 255 - numpy.array((0xFF, 0x7F, 0x0E))) < 30).all(axis=2).sum()
    check(c1 == 0, f"one run: one colour ({c1} pixels of a second)")
    missing = subprocess.run([sys.executable, tool, os.path.join(tmp, "none"), "-o", one], capture_output=True)
    check(missing.returncode != 0, "a directory without metrics.jsonl fails")

sys.exit(1 if failures else 0)
