"""The extension's switches and time windows, from the environment.

- ``LOCAL_AWS_STRICT=0`` turns every strict behaviour off (plain moto).
- ``LOCAL_AWS_STRICT_<NAME>=0`` turns one behaviour off (``<NAME>`` as the
  module passes it to ``enabled``, upper case, ``-`` as ``_``).
- ``LOCAL_AWS_TIME_SCALE`` multiplies every window (default 1; the test
  suite sets a fraction so it waits less, while a client that does not
  wait at all still fails).
- ``LOCAL_AWS_<NAME>_SECONDS`` sets one window outright (before scaling).
"""

import os

MOTO_VERSION = "5.1.22"

# Filled by moto_ext.install(): the behaviours in force, for /_local-aws/status.
INSTALLED: list[str] = []
# Filled by window(): each window's name and its length in seconds (scaled),
# for /_local-aws/status, so a test can tell how long to wait.
WINDOWS: dict[str, float] = {}


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def _key(name: str) -> str:
    return name.upper().replace("-", "_")


def strict() -> bool:
    return _flag("LOCAL_AWS_STRICT", True)


def enabled(name: str) -> bool:
    """Whether the strict behaviour ``name`` is on."""
    return strict() and _flag(f"LOCAL_AWS_STRICT_{_key(name)}", True)


def time_scale() -> float:
    try:
        scale = float(os.environ.get("LOCAL_AWS_TIME_SCALE", "1"))
    except ValueError:
        raise SystemExit("moto_ext: LOCAL_AWS_TIME_SCALE must be a number")
    if scale <= 0:
        raise SystemExit("moto_ext: LOCAL_AWS_TIME_SCALE must be above 0")
    return scale


def window(name: str, default_seconds: float) -> float:
    """The window ``name`` in seconds: its own variable or the default, scaled."""
    raw = os.environ.get(f"LOCAL_AWS_{_key(name)}_SECONDS")
    seconds = default_seconds
    if raw:
        try:
            seconds = float(raw)
        except ValueError:
            raise SystemExit(f"moto_ext: LOCAL_AWS_{_key(name)}_SECONDS must be a number")
    WINDOWS[name] = seconds * time_scale()
    return WINDOWS[name]
