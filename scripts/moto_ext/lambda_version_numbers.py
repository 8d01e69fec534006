"""``lambda-version-numbers``: a version number is never given twice.

"Lambda function versions" (AWS Lambda Developer Guide): "Lambda assigns
monotonically increasing sequence numbers for versioning. Lambda never
reuses version numbers, even after you delete and recreate a function."
moto numbers a new version as one more than the count of versions the
function has now: once an old version is deleted, the next publish gets the
number of the newest one again, and its ARN then overwrites that version's
(the deployer prunes old versions, so every later publish would collide).

Here a published version gets one more than the highest number the function
name ever had in this moto (forgotten on reset).

Switch: ``LOCAL_AWS_STRICT_LAMBDA_VERSION_NUMBERS=0``.
"""

from typing import Any

from moto.awslambda.models import LambdaStorage

from . import patching, settings

NAME = "lambda-version-numbers"
# On a LambdaStorage: the highest version number each function name had.
_HIGHEST = "_moto_ext_highest_version"


def install() -> list[str]:
    if not settings.enabled(NAME):
        return []

    @patching.replace(LambdaStorage, "publish_version")
    def publish_version(original: Any, self: LambdaStorage, name_or_arn: str, description: str = "") -> Any:
        function = self.get_function_by_name_or_arn_forbid_qualifier(name_or_arn)
        name = function.function_name
        highest: dict[str, int] = self.__dict__.setdefault(_HIGHEST, {})
        versions = list(self._functions.get(name, {}).get("versions", []))
        last = max([highest.get(name, 0)] + [int(v.version) for v in versions])
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
        highest[name] = number
        return published

    return [NAME]
