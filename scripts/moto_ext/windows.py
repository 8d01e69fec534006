"""When things happened, per resource, for the strict behaviours' windows.

AWS is eventually consistent and asynchronous: a role is usable seconds
after CreateRole, a function is ``Active`` seconds after CreateFunction.
The strict behaviours model this by remembering when an operation happened
to a resource (``mark``) and asking, later, whether a window since then is
still open (``open_for``). Keys are tuples naming the resource, e.g.
``("lambda-created", account, region, name, version)``.

This state is the extension's own, kept apart from moto's models, and it
is forgotten when moto resets (``POST /moto-api/reset``), so a reset moto
has no windows left open.
"""

import threading
import time
from typing import Hashable, Optional

from moto.moto_api._internal.models import MotoAPIBackend

from . import patching

_LOCK = threading.Lock()
_MOMENTS: dict[tuple[Hashable, ...], float] = {}


def mark(*key: Hashable) -> None:
    """Remembers that ``key`` happened now."""
    with _LOCK:
        _MOMENTS[key] = time.monotonic()


def forget(*key: Hashable) -> None:
    """Forgets every moment whose key starts with ``key``."""
    with _LOCK:
        for known in [k for k in _MOMENTS if k[: len(key)] == key]:
            del _MOMENTS[known]


def since(*key: Hashable) -> Optional[float]:
    """Seconds since ``key`` happened, or ``None`` if it never did."""
    with _LOCK:
        moment = _MOMENTS.get(key)
    return None if moment is None else time.monotonic() - moment


def open_for(seconds: float, *key: Hashable) -> float:
    """How much longer the window of ``seconds`` after ``key`` stays open;
    0 when it is closed or ``key`` never happened."""
    elapsed = since(*key)
    if elapsed is None:
        return 0.0
    return max(0.0, seconds - elapsed)


def clear() -> None:
    with _LOCK:
        _MOMENTS.clear()


def install() -> None:
    """Forgets every moment when moto resets."""

    @patching.replace(MotoAPIBackend, "reset")
    def reset(original, self):  # type: ignore[no-untyped-def]
        clear()
        return original(self)
