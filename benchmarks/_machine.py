"""What a benchmark ran on: every script prints it beside its figures."""
from __future__ import annotations

import os
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def rss() -> dict[str, float]:
    """VmRSS, RssAnon (heap), RssFile (mapped pages), VmHWM of this process in MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def summary() -> str:
    """Cores, CPU and load: the machine is shared, so load matters as much as the model."""
    return f"{len(os.sched_getaffinity(0))} cores, {cpu_model()}, load {os.getloadavg()[0]:.2f}"
