"""A tiny threaded HTTP server on 127.0.0.1 for download tests.

Serves a dict ``{url_path: bytes}``; honours ``Range: bytes=N-`` with 206 Partial Content
(unless ``honor_range=False``, to mimic servers that ignore Range), can hang up in the
middle of a body (``cut_after``), answers 404 for
unknown paths, and records every request (path, Range header) so tests can assert that a
resume really asked for a range.
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


@dataclass
class ServerLog:
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def ranges(self) -> list[str]:
        return [r for _, r in self.requests if r]


def _handler(files: dict[str, bytes], log: ServerLog, honor_range: bool, cut_after: int | None):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output quiet
            pass

        def do_GET(self):
            rng = self.headers.get("Range")
            log.requests.append((self.path, rng))
            body = files.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            m = re.fullmatch(r"bytes=(\d+)-", rng or "")
            if honor_range and m:
                start = int(m.group(1))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                part = body[start:]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                self.wfile.write(part)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if cut_after is not None:  # promise the whole body, send a part, hang up
                self.wfile.write(body[:cut_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def serve(
    files: dict[str, bytes], *, honor_range: bool = True, cut_after: int | None = None
) -> Iterator[tuple[str, ServerLog]]:
    """Start the server in a thread; yield ``(base_url, log)``; stop it on exit.

    ``cut_after``: full (200) responses send only this many bytes and close the
    connection (an interrupted download)."""
    log = ServerLog()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(files, log, honor_range, cut_after))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
