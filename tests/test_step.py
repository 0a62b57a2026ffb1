"""vaiseg.step: rule scripts log to their log file and end bad input with one clear line."""

import subprocess
import sys

SCRIPT = """
from vaiseg.step import log_to
from vaiseg.errors import DataError
log_to({log!r})
raise DataError("a.zip", "md5 mismatch")
"""


def test_data_error_is_one_line_not_a_traceback(tmp_path):
    log = tmp_path / "rule.log"
    r = subprocess.run([sys.executable, "-c", SCRIPT.format(log=str(log))], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip() == "error: a.zip: md5 mismatch"
    assert "ERROR a.zip: md5 mismatch" in log.read_text()


def test_other_errors_keep_their_traceback(tmp_path):
    code = f"from vaiseg.step import log_to\nlog_to({str(tmp_path / 'l.log')!r})\nraise KeyError('x')\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" in r.stderr and "KeyError" in r.stderr


def test_keep_freed_memory_is_accepted_by_glibc():
    """The mc_infer memory policy: glibc accepts both mallopt settings; elsewhere it is a no-op."""
    import platform

    code = "from vaiseg.step import keep_freed_memory\nprint(keep_freed_memory(), keep_freed_memory(64 << 20))\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    expect = "True True" if platform.libc_ver()[0] == "glibc" else "False False"
    assert r.stdout.strip() == expect
