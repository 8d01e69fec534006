"""ECR's defaults where moto keeps the old value instead.

- ``ecr-scan-default``: PutImageScanningConfiguration with an
  ``imageScanningConfiguration`` that leaves ``scanOnPush`` out turns
  scanning on push off: ``scanOnPush`` is a boolean whose default is false
  (ECR API Reference, "ImageScanningConfiguration": "scanOnPush ... Type:
  Boolean, Required: No"; the Smithy model's default, which is why the Rust
  SDK sends ``{}`` for false). moto ignores an empty configuration and keeps
  scanning on, so a repository asked to stop scanning never did, and every
  later plan found the same drift again.
"""

from typing import Any, Optional

from moto.ecr.models import Repository

from . import patching, settings


def install() -> list[str]:
    if not settings.enabled("ecr-scan-default"):
        return []

    @patching.replace(Repository, "_update_image_scanning_configuration")
    def with_default(original, self, image_scanning_configuration: Optional[dict[str, Any]]):  # type: ignore[no-untyped-def]
        if image_scanning_configuration is None:
            return original(self, image_scanning_configuration)
        scan = bool(image_scanning_configuration.get("scanOnPush", False))
        return original(self, {**image_scanning_configuration, "scanOnPush": scan})

    return ["ecr-scan-default"]
