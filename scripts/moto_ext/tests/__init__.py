"""Tests of the moto extension against a running moto with it (``scripts/local-cloud up``):
``python -m unittest discover -s scripts/moto_ext/tests -t scripts`` with
``AWS_ENDPOINT_URL`` aimed at it (``scripts/test`` runs them).

The test modules run side by side, one thread each (``load_tests``): their
tests mostly wait, for AWS's windows or for containers, and every test
names what it makes uniquely, as tests sharing one moto must (the cargo
tests share it too). Within a module, tests run one after the other. What
each module's tests report is passed on, in order, once the module is done.
"""

import os
import threading
import unittest
from typing import Any


class _Recorded(unittest.TestResult):
    """What one module's tests reported, to be told to the real result."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def _record(self, method: str, *args: Any) -> None:
        self.calls.append((method, args))

    def startTest(self, test: unittest.TestCase) -> None:
        self._record("startTest", test)

    def stopTest(self, test: unittest.TestCase) -> None:
        self._record("stopTest", test)

    def addSuccess(self, test: unittest.TestCase) -> None:
        self._record("addSuccess", test)

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        self._record("addError", test, err)

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        self._record("addFailure", test, err)

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        self._record("addSkip", test, reason)

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        self._record("addExpectedFailure", test, err)

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        self._record("addUnexpectedSuccess", test)

    def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase, err: Any) -> None:
        self._record("addSubTest", test, subtest, err)

    def addDuration(self, test: unittest.TestCase, elapsed: float) -> None:
        self._record("addDuration", test, elapsed)

    def tell(self, result: unittest.TestResult) -> None:
        for method, args in self.calls:
            if hasattr(result, method):
                getattr(result, method)(*args)


class _SideBySide(unittest.TestSuite):
    """Runs each of its suites (a module's tests) in a thread of its own."""

    def run(self, result: unittest.TestResult, debug: bool = False) -> unittest.TestResult:  # type: ignore[override]
        runs = [(suite, _Recorded()) for suite in self]
        threads = [threading.Thread(target=suite.run, args=(recorded,), name=f"tests {i}") for i, (suite, recorded) in enumerate(runs)]
        for thread in threads:
            thread.start()
        for thread, (_, recorded) in zip(threads, runs):
            thread.join()
            recorded.tell(result)
        return result


def load_tests(loader: unittest.TestLoader, tests: unittest.TestSuite, pattern: str) -> unittest.TestSuite:
    modules = loader.discover(start_dir=os.path.dirname(__file__), pattern=pattern or "test*.py")
    return _SideBySide(modules)
