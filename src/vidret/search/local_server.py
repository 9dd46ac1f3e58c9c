"""`vidret serve` in a child process on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from vidret.errors import VidretError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(args: list[str], cwd: Path | None = None, startup_s: float = 60.0) -> Iterator[str]:
    """Run `vidret <args> --port P` and yield its base URL once /health answers; stop it
    on exit. `args` starts with `serve` (e.g. `["serve", "runs/my-index"]`)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "vidret", *args, "--port", str(port)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = process.stdout.read() if process.stdout else ""
                raise VidretError(f"vidret {' '.join(args)} did not start:\n{output}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
