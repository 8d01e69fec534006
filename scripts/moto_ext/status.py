"""``GET /_local-aws/status``: which moto this is and which strict
behaviours are in force, so ``scripts/local-cloud status`` and the tests can
tell a strict local AWS from a plain moto."""

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable

import moto

from . import routes, settings


def code_hash() -> str:
    """The sha256 of the extension's modules as they were when this moto
    started (their bytes, concatenated in file-name order), so that
    ``scripts/local-cloud up`` can tell a moto running older extension code
    from one running this checkout's: ``cat scripts/moto_ext/*.py | sha256sum``
    in the C locale's order gives the same."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py"), key=lambda p: p.name.encode()):
        digest.update(path.read_bytes())
    return digest.hexdigest()


# Read once, at start: the files may change under a running moto.
CODE = code_hash()


def _status(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = json.dumps(
        {
            "moto": moto.__version__,
            "strict": settings.strict(),
            "time_scale": settings.time_scale(),
            "code": CODE,
            "behaviours": settings.INSTALLED,
            "windows": settings.WINDOWS,
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def install() -> list[str]:
    routes.route("/_local-aws/status", _status)
    return []
