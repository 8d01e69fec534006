"""Routes of our own in front of moto server's dispatcher.

moto server dispatches every request to a service backend by host, signature
or path; what it has no backend for (API Gateway's data plane, the
extension's status) falls through to S3. ``route(prefix, handler)``
registers a WSGI handler for paths starting with ``prefix`` (or matching
it, when it is a compiled pattern: API Gateway's data plane shares
``/restapis/`` with its control plane); ``wrap`` puts them in front of
moto's application, and ``behind()`` is that application, for a route that
translates a request and hands it on (CloudWatch's CBOR protocol).
"""

import re
from typing import Any, Callable, Iterable, Union

Handler = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_ROUTES: list[tuple[Union[str, "re.Pattern[str]"], Handler]] = []
_BEHIND: list[Handler] = []
# Routes chosen by the request's Host header (a custom domain name), asked first.
_HOSTS: list[tuple[Callable[[dict[str, Any]], bool], Handler]] = []


def route(prefix: Union[str, "re.Pattern[str]"], handler: Handler) -> None:
    _ROUTES.append((prefix, handler))


def route_host(serves: Callable[[dict[str, Any]], bool], handler: Handler) -> None:
    """Registers ``handler`` for the requests ``serves`` says are its own
    (by their ``Host``, API Gateway's custom domain names)."""
    _HOSTS.append((serves, handler))


def behind() -> Handler:
    """moto's own application, the one ``wrap`` put the routes in front of."""
    return _BEHIND[0]


def wrap(app: Handler) -> Handler:
    _BEHIND[:] = [app]

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        for serves, host_handler in _HOSTS:
            if serves(environ):
                return host_handler(environ, start_response)
        path = environ.get("PATH_INFO", "")
        for prefix, handler in _ROUTES:
            if prefix.match(path) if isinstance(prefix, re.Pattern) else path.startswith(prefix):
                return handler(environ, start_response)
        return app(environ, start_response)

    return dispatch
