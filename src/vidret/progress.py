"""Progress bars on a terminal, plain lines in a log file.

A bar redraws itself with carriage returns; written to a file (`vidret train ... > log`,
an experiment's per-run logs) that makes megabyte-long lines. So bars are shown only
when standard error is a terminal, and long jobs report in whole lines (`note`) instead:
one per epoch, per finished run, per saved batch of videos.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a bar or a note is made: a search start needs neither
    from tqdm import tqdm


def on_terminal() -> bool:
    return sys.stderr.isatty()


def progress_bar(iterable: Any = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """`tqdm(...)`, disabled unless `enabled` and standard error is a terminal."""
    from tqdm import tqdm

    return tqdm(iterable, disable=not (enabled and on_terminal()), **kwargs)


def note(message: str, err: bool = False) -> None:
    """A whole line on standard output (`err`: standard error, for what must not mix
    with a command's JSON) that does not tear an active bar, flushed at once (a log
    file's reader sees each epoch as it ends, not at exit)."""
    from tqdm import tqdm

    stream = sys.stderr if err else sys.stdout
    tqdm.write(message, file=stream)
    stream.flush()
