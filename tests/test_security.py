"""Security of the public demo: file routes, API file arguments, uploads, sharing, secrets.

Against the app served once for the session in-process on loopback (``served``
from :mod:`app_fixtures`: tiny random-init checkpoints, upload cap 400 kB, a fake
secret in the environment from before the app is built), with
plain HTTP requests where ``gradio_client`` would not send what an attacker can:

- Gradio's file routes serve Gradio's upload/cache folder only: ``/etc/passwd``,
  ``/proc/self/environ`` and the repository's own files are refused, also
  through ``..`` traversal, URL encoding and the legacy route; URLs are not
  fetched on the server's behalf (no SSRF to loopback services).
- The API's image argument cannot name a file on the server: a file payload whose
  path lies outside Gradio's upload folder is refused (no arbitrary image read,
  no file-existence oracle).
- Upload names cannot escape the upload folder; uploads above ``max_file_size`` are
  refused with HTTP 413 and the server keeps serving.
- ``share`` is off by default, the app binds where Gradio's env says (loopback by
  default); the code reads no credentials and serves no environment values.
"""

from __future__ import annotations

import ast
import os
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from app_fixtures import CANARY, PARROTS

pytest_plugins = ["app_fixtures"]  # the session's served app (`served`)
pytestmark = [
    pytest.mark.slow,  # starts the app
    pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing"),
]

REPO = Path(__file__).resolve().parents[1]


def _get(client: Any, path: str) -> tuple[int, bytes]:
    import httpx

    r = httpx.get(client.src.rstrip("/") + path, timeout=60, follow_redirects=False)
    return r.status_code, r.content


def _upload(client: Any, name: str, data: bytes) -> Any:
    import httpx

    return httpx.post(
        client.src.rstrip("/") + "/gradio_api/upload", files=[("files", (name, data))], timeout=60
    )


# --------------------------------------------------------------------------- file routes

SECRETS = {
    "/etc/passwd": b"root:",
    "/proc/self/environ": CANARY.encode(),
    str(REPO / "app.py"): b"def build_demo",
    str(REPO / "wne" / "checkpoints.py"): b"def load_dir",
    str(REPO / "pyproject.toml"): b"[project]",
    str(REPO / "tests" / "conftest.py"): b"HUB_REPO",
}


def _route_variants(target: str) -> list[str]:
    rel = os.path.relpath(target, os.getcwd())
    return [
        f"/gradio_api/file={target}",
        f"/gradio_api/file={quote(target, safe='')}",
        f"/gradio_api/file={rel}",
        f"/gradio_api/file/{target.lstrip('/')}",
        f"/gradio_api/file={'/..' * 12}{target}",
        f"/gradio_api/file=/tmp/gradio/{'%2e%2e/' * 12}{target.lstrip('/')}",
        f"/file={target}",
    ]


@pytest.mark.parametrize("target", list(SECRETS))
def test_file_routes_refuse_files_outside_the_cache(served: tuple[Any, Any], target: str) -> None:
    """System files, the process environment and the repository's own files cannot be
    fetched through any spelling of the file route."""
    _, client = served
    marker = SECRETS[target]
    for path in _route_variants(target):
        status, body = _get(client, path)
        assert status != 200 and marker not in body, (path, status)


def test_file_route_serves_uploaded_files(served: tuple[Any, Any]) -> None:
    """Control: the same route does serve what was uploaded (so the refusals above are
    refusals, not a broken route)."""
    _, client = served
    data = PARROTS.read_bytes()
    r = _upload(client, "parrots.png", data)
    assert r.status_code == 200
    status, body = _get(client, f"/gradio_api/file={r.json()[0]}")
    assert status == 200 and body == data


@pytest.mark.parametrize(
    "path",
    [
        "/static/..%2f..%2f..%2fapp.py",
        "/assets/..%2f..%2f..%2f..%2fapp.py",
        "/static/%2e%2e/%2e%2e/%2e%2e/app.py",
        "/gradio_api/static/../../../../app.py",
        "/favicon.ico/../app.py",
    ],
)
def test_static_routes_do_not_traverse(served: tuple[Any, Any], path: str) -> None:
    _, client = served
    status, body = _get(client, path)
    assert b"def build_demo" not in body, (path, status)


def test_no_server_side_requests_to_loopback(served: tuple[Any, Any]) -> None:
    """The file and proxy routes do not fetch URLs on loopback (no SSRF)."""
    _, client = served
    own = client.src.rstrip("/")
    for path in (f"/gradio_api/file={own}/config", f"/gradio_api/proxy={own}/config"):
        status, body = _get(client, path)
        assert status != 200 and b'"components"' not in body, (path, status)


# --------------------------------------------------------------------------- API file arguments


def _denoise_with(client: Any, image: Any) -> Any:
    return client.predict(
        image, 1.0, 0.0, 0, 0, 25, ["dncnn"], "shift-then-noise", 64, False, api_name="/denoise"
    )


def _raw_denoise(client: Any, image: Any) -> tuple[str, str]:
    """``/denoise`` through the plain HTTP API (gradio_client would upload a local file
    named in a payload itself, which is not what an attacker's client does); returns the
    final server-sent event and its data."""
    import json

    import httpx

    base = client.src.rstrip("/")
    data = [image, 1.0, 0.0, 0, 0, 25, ["dncnn"], "shift-then-noise", 64, False]
    # raw HTTP calls send every input (noise: issue 14, checkpoint: issue 16)
    data += ["gaussian", 20.0, 1.0, 30, "best"]
    with httpx.Client(timeout=120) as http:
        r = http.post(f"{base}/gradio_api/call/denoise", json={"data": data})
        r.raise_for_status()
        text = http.get(f"{base}/gradio_api/call/denoise/{r.json()['event_id']}").text
    events = re.findall(r"event: (\w+)\ndata: (.*)", text)
    assert events, text
    event, payload = events[-1]
    return event, json.dumps(json.loads(payload)) if payload not in ("", "null") else payload


@pytest.mark.parametrize("meta", [True, False], ids=["filedata", "bare-dict"])
def test_api_image_argument_cannot_name_server_files(
    served: tuple[Any, Any], tmp_path: Path, meta: bool
) -> None:
    """A file payload naming a path on the server instead of an uploaded file is refused:
    an image outside Gradio's upload folder is not read (no arbitrary image read: σ = 0
    would return it verbatim), and an existing image, an existing non-image, a missing
    file and a system file all get the same answer (no file-existence oracle). Uploads
    keep working."""
    _, client = served
    outside = tmp_path / "private.png"
    outside.write_bytes(PARROTS.read_bytes())
    answers = []
    for target in (outside, REPO / "app.py", tmp_path / "missing.png", Path("/etc/passwd")):
        payload: dict[str, Any] = {"path": str(target)}
        if meta:
            payload["meta"] = {"_type": "gradio.FileData"}
        event, data = _raw_denoise(client, payload)
        assert event == "error", (target, event, data[:200])
        answers.append(data)
    assert len(set(answers)) == 1, answers
    assert not any(str(tmp_path) in a or "passwd" in a for a in answers)
    uploaded = _upload(client, "parrots.png", PARROTS.read_bytes()).json()[0]
    event, data = _raw_denoise(client, {"path": uploaded, "meta": {"_type": "gradio.FileData"}})
    assert event == "complete", data[:300]


def test_error_messages_do_not_reveal_server_paths(served: tuple[Any, Any], tmp_path: Path) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    _, client = served
    bad = tmp_path / "notes.png"
    bad.write_text("not an image", encoding="utf-8")
    with pytest.raises(AppError) as info:
        _denoise_with(client, handle_file(str(bad)))
    message = str(info.value)
    assert "notes.png" in message
    assert not re.search(r"/tmp/|gradio/|\\\\|Traceback", message), message


# --------------------------------------------------------------------------- uploads


def test_upload_names_cannot_escape_the_upload_folder(served: tuple[Any, Any]) -> None:
    _, client = served
    name = f"escape-{uuid.uuid4().hex}.png"
    r = _upload(client, f"../../../../../../tmp/{name}", PARROTS.read_bytes())
    assert r.status_code == 200
    stored = Path(r.json()[0]).resolve()
    assert stored.name.endswith(name) and ".." not in r.json()[0]
    assert not (Path("/tmp") / name).exists()
    status, _ = _get(client, f"/gradio_api/file={stored}")
    assert status == 200


def test_uploads_above_max_file_size_are_refused(served: tuple[Any, Any]) -> None:
    """The app sets a cap by default; the live server (cap 400 kB here) answers 413 to a
    500 kB upload before storing it, then keeps serving."""
    import app

    cap = app.launch_kwargs()["max_file_size"]
    assert cap, "uploads must be capped by default"
    value, unit = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmg]?b)", str(cap).lower()).groups()
    assert float(value) * {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9}[unit] <= 100e6
    _, client = served
    r = _upload(client, "big.png", os.urandom(500_000))
    assert r.status_code == 413, r.status_code
    from gradio_client import handle_file

    assert _denoise_with(client, handle_file(str(PARROTS)))[3]["models"]


# --------------------------------------------------------------------------- sharing, secrets


def _app_tree() -> ast.Module:
    return ast.parse((REPO / "app.py").read_text(encoding="utf-8"))


def test_share_is_off_and_the_address_comes_from_gradio_env() -> None:
    """No ``share=True`` anywhere in app.py, none in its launch kwargs, and no hard-coded
    server address (Gradio's default is 127.0.0.1 unless GRADIO_SERVER_NAME says otherwise)."""
    import app

    kwargs = app.launch_kwargs()
    assert not kwargs.get("share")
    assert "server_name" not in kwargs
    for node in ast.walk(_app_tree()):
        if isinstance(node, ast.keyword) and node.arg == "share":
            assert isinstance(node.value, ast.Constant) and not node.value.value
        if isinstance(node, ast.keyword) and node.arg == "server_name":
            raise AssertionError("app.py hard-codes server_name")


def _env_reads(tree: ast.AST) -> set[str]:
    """Names read with ``os.environ.get(NAME)``, ``os.environ[NAME]`` or ``os.getenv(NAME)``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = ast.unparse(node.func)
            if func in ("os.environ.get", "os.getenv", "environ.get", "getenv"):
                names.add(str(node.args[0].value))
        if (
            isinstance(node, ast.Subscript)
            and ast.unparse(node.value) == "os.environ"
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(str(node.slice.value))
    return names


def test_the_app_and_library_read_no_credentials() -> None:
    """The demo's code (app.py, wne/) reads only its own and Gradio's settings from the
    environment: never a token, and never a credentials file."""
    files = [REPO / "app.py", *sorted((REPO / "wne").rglob("*.py"))]
    allowed = re.compile(
        r"^(WNE_|GRADIO_)|^(WORLD_SIZE|RANK|LOCAL_RANK|PYTHONPATH|MALLOC_ARENA_MAX)$"
    )
    for f in files:
        text = f.read_text(encoding="utf-8")
        reads = _env_reads(ast.parse(text))
        assert all(allowed.match(n) for n in reads), (f.name, reads)
        assert not re.search(r"HF_TOKEN|HUGGING_FACE_HUB_TOKEN|get_token\(|\.netrc|\.ssh/", text), (
            f.name
        )


def test_no_environment_value_reaches_a_client(served: tuple[Any, Any]) -> None:
    """With a secret in HF_TOKEN and another variable, the page, the config, the API
    description and an error answer never contain it."""
    from gradio_client.exceptions import AppError

    _, client = served
    for path in ("/", "/config", "/gradio_api/info", "/gradio_api/openapi.json"):
        _, body = _get(client, path)
        assert CANARY.encode() not in body, path
    with pytest.raises(AppError) as info:
        _denoise_with(client, None)
    assert CANARY not in str(info.value)
