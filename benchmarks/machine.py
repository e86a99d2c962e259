"""What every benchmark prints beside its figures: the CPU, cores, torch
version, threads, allocator setting and load average."""

import os
import platform


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def allocator():
    env = {k: v for k, v in sorted(os.environ.items())
           if k.startswith("MALLOC_")}
    return " ".join(f"{k}={v}" for k, v in env.items()) or "glibc defaults"


def describe(threads, extra=""):
    """One italic markdown line describing the machine and settings."""
    import torch

    cores = len(os.sched_getaffinity(0))
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"_{cpu_model()}, {cores} cores (os.cpu_count "
            f"{os.cpu_count()}); torch {torch.__version__}; threads "
            f"{threads}; allocator: {allocator()}; load average "
            f"{load} (1/5/15 min){extra}_")
