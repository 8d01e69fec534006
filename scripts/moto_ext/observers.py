"""Who is told what the data plane did: a list of callbacks that a
behaviour module appends to (``lambda_metrics`` to ``lambda_runtime``'s, for
one), told in turn; one that fails is reported, and never breaks the
invocation or the request it is told about."""

import sys
from typing import Callable, Generic, TypeVar

Event = TypeVar("Event")


class Observers(Generic[Event], list[Callable[[Event], None]]):
    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def tell(self, event: Event) -> None:
        for observer in self:
            try:
                observer(event)
            except Exception as error:
                print(f"moto_ext/{self.source}: an observer of {type(event).__name__} failed: {error}", file=sys.stderr, flush=True)
