"""The glue every ``workflow/scripts`` adapter shares: log to the rule's log file, and
turn a :class:`~vaiseg.errors.VaisegError` (bad input: the message names the file and
the problem) into one clear line and exit status 1 instead of a traceback."""

from __future__ import annotations

import logging
import sys

from .errors import VaisegError

LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def log_to(path: str) -> None:
    """Send logging of the running rule script to ``path`` and install the clear-error hook."""
    logging.basicConfig(filename=path, level=logging.INFO, format=LOG_FORMAT, force=True)
    previous = sys.excepthook

    def hook(kind, value, tb):
        if isinstance(value, VaisegError):
            logging.error("%s", value)
            print(f"error: {value}", file=sys.stderr)
        else:
            previous(kind, value, tb)

    sys.excepthook = hook
