"""Replacing moto's functions, loudly.

``replace(owner, "name")`` is a decorator: the decorated function becomes
``owner.name`` and receives the original as its first argument. When moto
no longer has ``owner.name`` (another moto version), installing fails and
moto server does not start, instead of a behaviour silently not applying.
"""

import functools
from typing import Any, Callable


class PatchError(RuntimeError):
    pass


def replace(owner: Any, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    original = getattr(owner, name, None)
    if original is None or not callable(original):
        raise PatchError(
            f"moto_ext: {getattr(owner, '__name__', owner)}.{name} is missing; "
            "the extension was written against another moto version"
        )

    def decorate(new: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def patched(*args: Any, **kwargs: Any) -> Any:
            return new(original, *args, **kwargs)

        patched.__moto_ext_original__ = original  # type: ignore[attr-defined]
        setattr(owner, name, patched)
        return patched

    return decorate
