"""Child `vidret` processes that die with the process that started them.

`vidret experiment` runs each training as a `vidret train` child. Killed, even with
SIGKILL (which runs no cleanup of ours), it must not leave trainings running: an orphan
would go on writing a run folder that the next `vidret experiment` resumes beside it.
The parent marks each child's environment; the child, first thing, asks Linux to send
it SIGTERM when its parent dies (`prctl(PR_SET_PDEATHSIG)`), then checks that the
parent is still there (it may have died before the request was made).
"""

from __future__ import annotations

import ctypes
import os
import signal

PARENT_ENV = "VIDRET_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def child_environment() -> dict[str, str]:
    """The environment for a child that must not outlive this process."""
    return {**os.environ, PARENT_ENV: str(os.getpid())}


def die_with_parent() -> None:
    """In a child started with `child_environment()`: end when the parent ends.

    Linux sends the signal when the parent *thread* that started the child exits; the
    experiment runner's threads wait on their child, so they outlive it."""
    parent = os.environ.pop(PARENT_ENV, None)
    if parent is None:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the runner's own cleanup remains
        pass
    if os.getppid() != int(parent):  # the parent died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)
