#!/usr/bin/python3
"""compare_torch.py: shardrec against small PyTorch peers, one case at a time,
alternating runs (ours, peer, ours, peer, ...) so that a load change on a
shared machine hits both sides alike.

  /usr/bin/python3 bench/compare_torch/compare_torch.py --build build [--threads 1] [--pairs 3]
                   [--cases vae-ml1m,vae-ml20m,tt-1024,tt-4096]

Both sides run with the same thread count (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
torch.set_num_threads), OMP_WAIT_POLICY=passive and the same OpenBLAS kernel
(OPENBLAS_CORETYPE: the one shardrec picks, or the one already set). Each run
reports its per-step wall and CPU time (getrusage, all threads, warm-up step
excluded); peak RSS is the child's ru_maxrss (os.wait4). A ratio is peer / ours
(> 1: shardrec faster), one per pair; the table gives the median and the range.

Cases (the shapes of docs and bench/):
  vae-ml1m   Mult-VAE, 3533 items, batch 500, 95 clicks/user (ML-1M after the paper's filter)
  vae-ml20m  Mult-VAE, 20108 items, batch 500, 73 clicks/user (ML-20M)
             peers: the notebook's dense first layer, and a sparse first layer (EmbeddingBag)
  tt-1024    two-tower with SSL and streaming logQ, 20k users x 4k items, batch 1024
  tt-4096    the same at batch 4096
Needs Debian's python3-torch (PyTorch 1.13) on /usr/bin/python3.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def cases(build, threads):
    vae = os.path.join(build, "bench", "bench_vae")
    tt = os.path.join(build, "bench", "bench_two_tower")
    peer_vae = [sys.executable, os.path.join(HERE, "torch_vae.py"), "--threads", str(threads)]
    peer_tt = [sys.executable, os.path.join(HERE, "torch_two_tower.py"), "--threads", str(threads)]
    t = ["--threads", str(threads)]
    out = {}
    for name, items, clicks, steps in (("vae-ml1m", 3533, 95, 12), ("vae-ml20m", 20108, 73, 5)):
        shape = ["--items", str(items), "--clicks", str(clicks), "--batch", "500", "--steps", str(steps)]
        out[name] = (
            [vae] + shape + t,
            {
                "torch dense (notebook)": peer_vae + shape + ["--first-layer", "dense"],
                "torch sparse first layer": peer_vae + shape + ["--first-layer", "sparse"],
            },
        )
    for batch, steps in ((1024, 30), (4096, 8)):
        shape = ["--batch", str(batch), "--steps", str(steps)]
        out[f"tt-{batch}"] = ([tt] + shape, {"torch": peer_tt + shape})
    return out


def parse(stdout):
    """(wall ms, CPU ms) per step from either side's output."""
    m = re.search(r"steps \d+ wall_ms ([\d.]+) cpu_ms ([\d.]+)", stdout)  # the peers
    if m:
        return float(m.group(1)), float(m.group(2))
    m = re.search(r"CPU time: ([\d.]+) ms/step \(wall ([\d.]+) ms/step\)", stdout)  # bench_vae
    if m:
        return float(m.group(2)), float(m.group(1))
    m = re.search(r"\(([\d.]+) ms/step; CPU time of rank 0 ([\d.]+) ms/step\)", stdout)  # bench_two_tower
    if m:
        return float(m.group(1)), float(m.group(2))
    raise RuntimeError("no timing line in:\n" + stdout)


def run(cmd, env):
    """(wall ms, CPU ms, peak RSS MiB) of one run."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stdout = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{stdout}")
    wall, cpu = parse(stdout)
    return wall, cpu, ru.ru_maxrss / 1024.0


def openblas_core(env, vae):
    """The kernel shardrec runs with: the one set, or the one it picks itself."""
    if env.get("OPENBLAS_CORETYPE"):
        return env["OPENBLAS_CORETYPE"]
    out = subprocess.run([vae, "--items", "100", "--clicks", "5", "--steps", "1", "--threads", "1"], env=env,
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    return re.search(r"OpenBLAS core ([A-Za-z0-9_]+)", out).group(1)


def summary(values):
    return f"{statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--cases", default="vae-ml1m,vae-ml20m,tt-1024,tt-4096")
    a = ap.parse_args()
    env = dict(os.environ)
    env.pop("SHARDREC_CONFIGURED", None)
    all_cases = cases(a.build, a.threads)
    core = openblas_core(env, all_cases["vae-ml1m"][0][0])
    t = str(a.threads)
    env.update(OMP_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t, MKL_NUM_THREADS=t, OMP_WAIT_POLICY="passive",
               OPENBLAS_CORETYPE=core)
    print(f"OpenBLAS core {core}, {a.threads} thread(s), {a.pairs} alternating pairs per peer; "
          f"ratio = peer / shardrec (CPU time; wall time)")
    print("| case | peer | shardrec CPU ms/step | peer CPU ms/step | ratio CPU | ratio wall | RSS MiB shardrec / peer |")
    print("|---|---|---|---|---|---|---|")
    for name in a.cases.split(","):
        ours_cmd, peers = all_cases[name]
        for peer_name, peer_cmd in peers.items():
            ours, theirs = [], []
            for _ in range(a.pairs):
                ours.append(run(ours_cmd, env))
                theirs.append(run(peer_cmd, env))
            cpu_ratio = [p[1] / o[1] for o, p in zip(ours, theirs)]
            wall_ratio = [p[0] / o[0] for o, p in zip(ours, theirs)]
            print(f"| {name} | {peer_name} | {summary([o[1] for o in ours])} | {summary([p[1] for p in theirs])} | "
                  f"{summary(cpu_ratio)} | {summary(wall_ratio)} | "
                  f"{max(o[2] for o in ours):.0f} / {max(p[2] for p in theirs):.0f} |", flush=True)


if __name__ == "__main__":
    main()
