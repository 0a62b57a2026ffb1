"""vaiseg.atomic: outputs appear whole or not at all, with ordinary file permissions."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from vaiseg import atomic
from vaiseg.atomic import atomic_path, write_text
from vaiseg.raster import write_raster


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_outputs_get_the_umask_permissions_not_mkstemps(tmp_path):
    want = 0o666 & ~atomic._UMASK
    assert atomic._UMASK == atomic._umask()  # reading it leaves it as it was
    write_text(tmp_path / "a.md", "x\n")
    write_raster(tmp_path / "r.tif", np.zeros((1, 4, 4), dtype=np.uint8))
    for p in (tmp_path / "a.md", tmp_path / "r.tif"):
        assert _mode(p) == want, (p, oct(_mode(p)))
    if want != 0o600:  # the umask of CI and of most shells (022, 002)
        assert _mode(tmp_path / "a.md") & stat.S_IRGRP


def test_a_failed_write_leaves_the_old_output_and_no_part_file(tmp_path):
    write_text(tmp_path / "t.csv", "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "t.csv") as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert (tmp_path / "t.csv").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]
