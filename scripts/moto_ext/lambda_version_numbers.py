"""``lambda-version-numbers``: a version number is never given twice.

"Lambda function versions" (AWS Lambda Developer Guide): a function's
versions are numbered in sequence as they are published; a deleted
version's number is not given to a later one. moto numbers a new version as
one more than the count of versions the function has now: once the newest
version is deleted, the next publish gets its number again, and its ARN then
overwrites that version's (the deployer prunes old versions, so later
publishes would collide).

Here a published version gets one more than the highest number the function
had while it existed (a function deleted whole and created again starts
from 1, as the tests of `destroy` then `up` expect).

Switch: ``LOCAL_AWS_STRICT_LAMBDA_VERSION_NUMBERS=0``.
"""

from typing import Any

from moto.awslambda.models import LambdaStorage

from . import patching, settings

NAME = "lambda-version-numbers"
# In a function's entry of LambdaStorage._functions (gone with the function):
# the highest version number it had.
_HIGHEST = "_moto_ext_highest_version"


def install() -> list[str]:
    if not settings.enabled(NAME):
        return []

    @patching.replace(LambdaStorage, "publish_version")
    def publish_version(original: Any, self: LambdaStorage, name_or_arn: str, description: str = "") -> Any:
        function = self.get_function_by_name_or_arn_forbid_qualifier(name_or_arn)
        name = function.function_name
        entry = self._functions.get(name, {})
        versions = list(entry.get("versions", []))
        last = max([int(entry.get(_HIGHEST, 0))] + [int(v.version) for v in versions])
        published = original(self, name_or_arn, description)
        if published is None or any(published is v for v in versions):
            return published  # nothing new: moto answers the last version
        number = int(published.version)
        if number <= last:
            # moto filed it under the ARN of a version that may exist: give
            # that ARN back to its owner before renumbering.
            owner = next((v for v in versions if int(v.version) == number), None)
            if owner is not None:
                self._arns[published.function_arn] = owner
            else:
                self._arns.pop(published.function_arn, None)
            number = last + 1
            published.set_version(number)
            self._arns[published.function_arn] = published
        entry[_HIGHEST] = number
        return published

    return [NAME]
