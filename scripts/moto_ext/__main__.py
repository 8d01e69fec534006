"""``python -m moto_ext -H HOST -p PORT``: moto server with the extension.

Checks the moto version, installs every behaviour, then serves moto's own
application behind our routes, as ``moto.server.main`` would (threaded
werkzeug; SIGTERM ends it).
"""

import argparse
import signal
import sys

import moto
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

from . import install, routes, settings


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m moto_ext")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)

    if moto.__version__ != settings.MOTO_VERSION:
        raise SystemExit(
            f"moto_ext: written against moto {settings.MOTO_VERSION}, found {moto.__version__}; "
            "reinstall with scripts/local-cloud up"
        )
    installed = install()
    print(
        f"moto_ext: moto {moto.__version__}, strict={settings.strict()}, "
        f"time scale {settings.time_scale()}, behaviours: {', '.join(installed) or 'none'}",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, routes.wrap(app), threaded=True)


if __name__ == "__main__":
    main(sys.argv[1:])
