"""A fake Hugging Face Hub on 127.0.0.1 for tests that must never touch the network.

``hf_hub_download`` (huggingface-hub 2.4) talks to a hub in two steps, and this server answers both:

1. ``HEAD {endpoint}/{repo_id}/resolve/{revision}/{filename}`` (redirects on the same host are followed;
   a redirect to another host is not, and its headers are used as they are). It reads:
   ``X-Repo-Commit`` (required: the commit the file is stored under in the cache), ``X-Linked-Etag`` or
   else ``ETag`` (required: the blob's name in the cache, quotes and ``W/`` stripped), ``X-Linked-Size``
   or else ``Content-Length`` (the expected size; checked after the GET), ``Location`` (where to GET),
   and on errors ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``: without
   one a 404 is reported as a generic "cannot reach the hub" error). ``X-Xet-Hash`` is never sent, so
   downloads stay on plain HTTP.
2. ``GET`` on the URL from step 1, whose body becomes the blob.

No other endpoint is called for a download. (huggingface-hub may also GET ``/api/agent-harnesses`` on
its *default* endpoint while building headers unless telemetry is disabled: `isolate_hf` disables it.)

Usage::

    with FakeHub() as hub:
        rev = hub.add("acme/pan", "pan.safetensors", b"...")
        hf_hub_download("acme/pan", "pan.safetensors", revision=rev, endpoint=hub.endpoint, cache_dir=...)
        assert hub.count("GET") == 1

Every request is recorded (`requests`, `count`) so that a test can assert that a second load made no
request at all.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+(?:/[^/]+)?)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)$")
_CDN = re.compile(r"^/cdn/(?P<key>[0-9a-f]+)$")


@dataclass(frozen=True)
class HubFile:
    repo_id: str
    revision: str
    filename: str
    data: bytes  # the true content: what the registry's sha256 describes
    served: bytes  # what the server sends (differs from `data` when corrupt)
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def etag(self) -> str:
        """What the real hub sends: sha256 for LFS files, the git blob sha1 for regular ones."""
        if self.lfs:
            return self.sha256
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # decoded path, no query string
    headers: dict[str, str]  # lower-case names


def commit_for(*parts: str) -> str:
    """A deterministic fake 40-hex commit id."""
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


class FakeHub:
    """A threaded HTTP server that serves files like huggingface.co's ``/resolve/`` endpoint.

    ``error_codes=False`` answers 404s without ``X-Error-Code`` (like a misconfigured mirror);
    ``lfs_redirect=True`` answers HEAD/GET on ``/resolve/`` with a 302 to ``http://localhost:PORT/cdn/...``
    (another host, as huggingface.co does for LFS files), exercising ``X-Linked-Etag``/``X-Linked-Size``.
    Set ``force_status`` to answer every request with that status (avoid 5xx/429: huggingface-hub
    retries those with sleeps of several seconds).
    """

    def __init__(self, *, error_codes: bool = True, lfs_redirect: bool = False) -> None:
        self.error_codes = error_codes
        self.lfs_redirect = lfs_redirect
        self.force_status: int | None = None
        self.requests: list[Request] = []
        self._files: dict[tuple[str, str, str], HubFile] = {}
        self._branches: dict[tuple[str, str], str] = {}  # (repo_id, "main") -> commit
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- content ---------------------------------------------------------------------------------

    def add(
        self,
        repo_id: str,
        filename: str,
        data: bytes,
        *,
        revision: str | None = None,
        corrupt: bool = False,
        lfs: bool = True,
    ) -> str:
        """Publish ``data`` as ``filename`` in ``repo_id`` at ``revision`` (a new fake commit by default).

        ``corrupt=True`` serves bytes of the same length that differ from ``data`` while every header
        (ETag, sizes) still describes ``data``: only a sha256 check notices. Returns the revision, which
        also becomes the repo's ``main``.
        """
        revision = revision or commit_for(repo_id, filename, str(len(self._files)))
        served = bytes([data[0] ^ 0xFF]) + data[1:] if corrupt and data else data
        if corrupt and not data:
            served = b"\0"
        with self._lock:
            self._files[(repo_id, revision, filename)] = HubFile(
                repo_id, revision, filename, data, served, lfs
            )
            self._branches[(repo_id, "main")] = revision
        return revision

    def resolve_path(self, repo_id: str, filename: str, revision: str) -> str:
        return f"/{repo_id}/resolve/{revision}/{filename}"

    # -- request log -----------------------------------------------------------------------------

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests seen, optionally only those with this method and/or exactly this path."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method) and (path is None or r.path == path)
            )

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter((r.method, r.path) for r in self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- server ----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeHub is not running: use it as a context manager or call start()")
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fakehub", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- routing (called from handler threads) ---------------------------------------------------

    def _record(self, method: str, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(Request(method, path, headers))

    def _lookup(
        self, repo_id: str, revision: str, filename: str
    ) -> tuple[int, dict[str, str], HubFile | None]:
        with self._lock:
            revision = self._branches.get((repo_id, revision), revision)
            known_repo = any(key[0] == repo_id for key in self._files)
            known_revision = any(key[:2] == (repo_id, revision) for key in self._files)
            file = self._files.get((repo_id, revision, filename))
        if file is not None:
            return 200, {}, file
        if not known_repo:
            return 404, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}, None
        if not known_revision:
            return 404, {"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id"}, None
        headers = {
            "X-Error-Code": "EntryNotFound",
            "X-Error-Message": "Entry not found",
            "X-Repo-Commit": revision,
        }
        return 404, headers, None

    def _by_key(self, key: str) -> HubFile | None:
        with self._lock:
            return next((f for f in self._files.values() if _cdn_key(f) == key), None)


def _cdn_key(file: HubFile) -> str:
    return commit_for(file.repo_id, file.revision, file.filename)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    server_version = "FakeHub/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.fake._record(self.command, path, {k.lower(): v for k, v in self.headers.items()})
        if self.fake.force_status is not None:
            return self._send(self.fake.force_status, {}, b"forced error", body)

        if m := _CDN.match(path):
            file = self.fake._by_key(m["key"])
            if file is None:
                return self._send(404, {}, b"not found", body)
            return self._send(200, {"ETag": f'"{file.etag}"'}, file.served, body)

        m = _RESOLVE.match(path)
        if m is None:
            return self._send(404, {}, b"not found", body)
        status, headers, file = self.fake._lookup(m["repo"], m["revision"], m["filename"])
        if file is None:
            if not self.fake.error_codes:
                headers = {}
            return self._send(status, headers, b"not found", body)

        headers = {"X-Repo-Commit": file.revision, "ETag": f'"{file.etag}"'}
        if file.lfs and self.fake.lfs_redirect:
            headers |= {
                "X-Linked-Etag": f'"{file.etag}"',
                "X-Linked-Size": str(len(file.data)),
                "Location": f"http://localhost:{self.fake.port}/cdn/{_cdn_key(file)}",
            }
            return self._send(302, headers, b"", body)
        return self._send(200, headers, file.served, body)

    def _send(self, status: int, headers: dict[str, str], payload: bytes, body: bool) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if body:
            self.wfile.write(payload)


def isolate_hf(monkeypatch: Any, home: Path) -> Path:
    """Point huggingface-hub at ``home`` and cut it off from the real world; returns the hub cache dir.

    huggingface-hub reads its environment once, at import, so the env vars (for subprocesses) and the
    already-imported ``huggingface_hub.constants`` (for this process) are both set. Telemetry is off
    (it would GET ``/api/agent-harnesses`` on huggingface.co and write ``.agent_harnesses.json`` into
    HF_HOME), no stored or environment token is sent, and offline mode is off so that requests to a
    `FakeHub` are allowed whatever the developer's shell says.
    """
    from huggingface_hub import constants

    cache = home / "hub"
    for name in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_OIDC_RESOURCE",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
    ):
        monkeypatch.delenv(name, raising=False)
    for name in ("HF_ENDPOINT", "GANEDIT_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_XET_CACHE", str(home / "xet"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    patched = {
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(cache),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json"),
        "CHECK_FOR_UPDATE_DONE_PATH": str(home / ".check_for_update_done"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": True,
        "HF_HUB_DISABLE_PROGRESS_BARS": True,
    }
    for name, value in patched.items():
        if hasattr(constants, name):
            monkeypatch.setattr(constants, name, value)
    return cache
