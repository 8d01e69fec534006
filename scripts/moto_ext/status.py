"""``GET /_local-aws/status``: which moto this is and which strict
behaviours are in force, so ``scripts/local-cloud status`` and the tests can
tell a strict local AWS from a plain moto."""

import json
from typing import Any, Callable, Iterable

import moto

from . import routes, settings


def _status(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = json.dumps(
        {
            "moto": moto.__version__,
            "strict": settings.strict(),
            "time_scale": settings.time_scale(),
            "behaviours": settings.INSTALLED,
            "windows": settings.WINDOWS,
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def install() -> list[str]:
    routes.route("/_local-aws/status", _status)
    return []
