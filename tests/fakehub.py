"""A loopback fake of the Hugging Face Hub's file-serving protocol, for offline tests.

A real ``ThreadingHTTPServer`` on ``127.0.0.1`` (random port) speaking the part of the
protocol ``huggingface_hub.hf_hub_download`` uses (not a mock of its internals):
``HEAD``/``GET /{ns}/{name}/resolve/{revision}/{path}`` → 200 with ``X-Repo-Commit``,
``ETag`` (quoted sha256) and ``Content-Length``, or 404 with ``X-Error-Code``
``RepoNotFound``, ``RevisionNotFound`` (not ``main`` nor the current commit) or
``EntryNotFound``; anything under ``/api/`` → 404. Faults: :attr:`FakeHub.delay`,
:meth:`FakeHub.serve_wrong_bytes` (a tampered mirror) and :meth:`FakeHub.stop` (the Hub
is down). Point a client at it with ``HF_ENDPOINT`` or the ``hub_env`` fixture.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["FakeHub", "PickleMarker"]


class PickleMarker:
    """Unpickling this creates a file: proof that a pickle was (or was not) loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.path,))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for a handler that is sleeping
    hub: FakeHub

    def handle_error(self, request, client_address) -> None:
        """Stays quiet when a client hangs up (timeouts are part of the tests)."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: nothing pooled

    def log_message(self, format: str, *args: object) -> None:
        """No access log on stderr."""

    def do_HEAD(self) -> None:
        self.server.hub._answer(self, head=True)

    def do_GET(self) -> None:
        self.server.hub._answer(self, head=False)


class FakeHub:
    """A loopback fake Hub serving model repos from memory.

    Args:
        repos: ``{repo_id: {path_in_repo: bytes}}``, e.g.
            ``{"user/wne": {"dncnn-wne-s25/config.json": b"..."}}``.

    Attributes:
        url: ``http://127.0.0.1:<port>`` (set by :meth:`start`).
        delay: Seconds to sleep before answering any repo request (0: none).
        requests: ``(method, path)`` of every request received, in order.
    """

    def __init__(self, repos: Mapping[str, Mapping[str, bytes]] | None = None) -> None:
        self._repos: dict[str, dict[str, bytes]] = {
            r: dict(files) for r, files in (repos or {}).items()
        }
        self._wrong: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()
        self.delay = 0.0
        self.requests: list[tuple[str, str]] = []
        self.url = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_folder(cls, root: str | Path, repo_id: str) -> FakeHub:
        """A hub whose repo ``repo_id`` holds the checkpoint folders under ``root``."""
        files = sorted(f for f in Path(root).glob("*/**/*") if f.is_file())
        return cls({repo_id: {f.relative_to(root).as_posix(): f.read_bytes() for f in files}})

    def put(self, repo_id: str, path: str, data: bytes) -> None:
        """Adds or replaces one file (creating the repo if needed)."""
        with self._lock:
            self._repos.setdefault(repo_id, {})[path] = bytes(data)

    def serve_wrong_bytes(self, repo_id: str, path: str, data: bytes | None = None) -> None:
        """Serves ``data`` (default: the file with its middle byte flipped) instead of the
        file, with consistent headers: only a sha256 recorded elsewhere can notice."""
        with self._lock:
            real = self._repos[repo_id][path]
            if data is None:
                buf = bytearray(real)
                buf[len(buf) // 2] ^= 0xFF
                data = bytes(buf)
            self._wrong[(repo_id, path)] = data

    def served(self, repo_id: str, path: str) -> bytes:
        """The bytes currently served for ``path``."""
        with self._lock:
            return self._wrong.get((repo_id, path), self._repos[repo_id][path])

    def commit(self, repo_id: str) -> str:
        """The repo's current commit: 40 hex digits derived from the served content."""
        with self._lock:
            files = self._repos[repo_id]
            h = hashlib.sha1(repo_id.encode())
            for path in sorted(files):
                data = self._wrong.get((repo_id, path), files[path])
                h.update(path.encode() + b"\0" + hashlib.sha256(data).digest())
            return h.hexdigest()

    def start(self) -> FakeHub:
        """Starts serving on a free loopback port (a restart gets a new port)."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.hub = self
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving and closes the port (the Hub is 'down'); idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def paths_requested(self, method: str | None = None) -> list[str]:
        """Request paths received (optionally only those of one HTTP method)."""
        with self._lock:
            return [p for m, p in self.requests if method is None or m == method]

    def _answer(self, h: _Handler, *, head: bool) -> None:
        raw_path = urlsplit(h.path).path
        with self._lock:
            self.requests.append((h.command, raw_path))
        parts = raw_path.strip("/").split("/")
        if parts[0] == "api":  # no API calls: hf_hub_download needs none
            return self._send(h, 404, b"", {}, head=head)
        if self.delay > 0:
            time.sleep(self.delay)
        if len(parts) >= 5 and parts[2] == "resolve":
            repo_id = f"{unquote(parts[0])}/{unquote(parts[1])}"
            revision = unquote(parts[3])
            path = "/".join(unquote(p) for p in parts[4:])
            return self._resolve(h, repo_id, revision, path, head=head)
        return self._send(h, 404, b"not found", {}, head=head)

    def _resolve(self, h: _Handler, repo_id: str, revision: str, path: str, *, head: bool) -> None:
        if repo_id not in self._repos:
            return self._send(h, 404, b"", {"X-Error-Code": "RepoNotFound"}, head=head)
        commit = self.commit(repo_id)
        if revision not in ("main", commit):
            return self._send(h, 404, b"", {"X-Error-Code": "RevisionNotFound"}, head=head)
        if path not in self._repos[repo_id]:
            headers = {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}
            return self._send(h, 404, b"Entry not found", headers, head=head)
        data = self.served(repo_id, path)
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
            "Content-Type": "application/octet-stream",
        }
        self._send(h, 200, data, headers, head=head)

    @staticmethod
    def _send(
        h: _Handler, status: int, body: bytes, headers: dict[str, str], *, head: bool
    ) -> None:
        try:
            h.send_response(status)
            for k, v in headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if not head:
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass
