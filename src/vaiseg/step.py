"""The glue every ``workflow/scripts`` adapter shares: log to the rule's log file, and
turn a :class:`~vaiseg.errors.VaisegError` (bad input: the message names the file and
the problem) into one clear line and exit status 1 instead of a traceback; and the
process memory policy of the inference step (:func:`keep_freed_memory`)."""

from __future__ import annotations

import ctypes
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


#: glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory(threshold: int = 256 << 20) -> bool:
    """Make glibc's malloc keep freed blocks below ``threshold`` bytes for reuse in this process.

    By default glibc serves blocks above a (dynamic, <= 32 MiB) threshold by mmap and gives
    freed memory at the top of the heap back to the OS, so every large temporary of a
    tiled inference (FFT blocks, logits of a sample chunk, statistics planes) is
    page-faulted in again on first touch. Here, on the 2-core dev machine, that kernel time
    was 45 % of the CPU time of PB's MC inference of a 1000 x 800 area (14.3 of 31.9
    CPU-s; wall 16.0 s -> 9.7 s with this policy, peak RSS 1515 -> 1361 MB). Blocks of at
    least ``threshold`` still come from mmap and go back to the OS when freed, and the
    heap is trimmed once more than ``threshold`` is free at its top, so at most about
    ``threshold`` of freed memory stays with the process.

    Process-wide; called by the mc_infer rule script and benchmarks/run.py, not by the
    library functions. Returns True when glibc accepted both settings, False elsewhere
    (other C libraries: nothing is changed).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library symbol table / not glibc
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    value = int(threshold)
    return mallopt(_M_MMAP_THRESHOLD, value) == 1 and mallopt(_M_TRIM_THRESHOLD, value) == 1
