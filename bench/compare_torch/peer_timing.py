"""What the PyTorch peers share: the timed loop and the line compare_torch.py reads."""
import resource
import time


def cpu_seconds():
    """CPU time of this process so far, all threads, user + system (getrusage)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def time_steps(steps, run_step):
    """Runs run_step(s) for s = 0..steps (step 0 warms up, untimed) and prints
    "steps S wall_ms W cpu_ms C", per timed step."""
    wall = cpu = 0.0
    for s in range(steps + 1):
        t0, c0 = time.perf_counter(), cpu_seconds()
        run_step(s)
        if s > 0:
            wall += time.perf_counter() - t0
            cpu += cpu_seconds() - c0
    print(f"steps {steps} wall_ms {1e3 * wall / steps:.2f} cpu_ms {1e3 * cpu / steps:.2f}")
