"""Run one `vidret` command in a fresh process and measure it: wall time and that process's
own peak resident memory (its `ru_maxrss`, printed by a wrapper on exit)."""

from __future__ import annotations

import subprocess
import sys
import time

_WRAPPER = """
import resource, sys
from vidret.cli import main
sys.argv = {argv!r}
try:
    main()
finally:
    print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def measured_vidret(args: list[str]) -> dict[str, float]:
    """`vidret ARGS`: {"wall_s", "peak_rss_mb"}; raises with its output if it fails."""
    code = _WRAPPER.format(argv=["vidret", *args])
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"vidret {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    peak_kb = int(proc.stderr.split("PEAK_KB")[-1].split()[0])
    return {"wall_s": round(wall, 3), "peak_rss_mb": round(peak_kb / 1024, 1)}
