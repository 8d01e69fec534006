"""``ecr-registry``: what is pushed to the local registry is what ECR lists,
ECR's deletes reach the registry, and the lifecycle policy expires what its
rules select when asked; switched off, moto's ECR never hears of a push.

Images are pushed with the registry's own push protocol (blob uploads, then
the manifest: what ``docker push`` does), each to a repository of its own
test, so the shared registry is read and changed only there."""

import hashlib
import json
import time
import unittest
import urllib.error
import urllib.request

from moto_ext import ecr_registry

from . import support
from .support import ACCOUNT, REGION, client, http, name, refused

HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def registry(repository: str) -> ecr_registry.Registry:
    return ecr_registry.Registry(HOST, repository)


def upload(repository: str, blob: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    status, headers, _ = registry(repository)._request("POST", "blobs/uploads/")
    assert status == 202, status
    location = headers["Location"]
    separator = "&" if "?" in location else "?"
    request = urllib.request.Request(
        f"{location}{separator}digest={digest}",
        data=blob,
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, context=registry(repository).context, timeout=10) as answer:
        assert answer.status == 201, answer.status
    return digest


def push(repository: str, tag: str, content: bytes) -> tuple[str, int]:
    """Pushes a one-layer image under ``tag``; returns its digest (as the
    registry answers it) and its layer's size."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config), "digest": upload(repository, config)},
            "layers": [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(content), "digest": upload(repository, content)}
            ],
        }
    )
    return registry(repository).put(tag, manifest, MANIFEST_TYPE), len(content)


def in_registry(repository: str, digest: str) -> bool:
    return registry(repository).manifest(digest) is not None


class RegistryTest(unittest.TestCase):
    def setUp(self) -> None:
        self.ecr = client("ecr", support.endpoint())
        self.repository = name("ext-ecr")
        self.ecr.create_repository(repositoryName=self.repository)
        self.addCleanup(self._delete_repository)

    def _delete_repository(self) -> None:
        try:
            self.ecr.delete_repository(repositoryName=self.repository, force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass


class Listed(RegistryTest):
    def test_a_pushed_image_is_described_with_the_registrys_digest_tags_and_size(self) -> None:
        before = int(time.time())
        digest, size = push(self.repository, "h0001", b"layer one")
        details = self.ecr.describe_images(repositoryName=self.repository)["imageDetails"]
        self.assertEqual(len(details), 1, details)
        self.assertEqual(details[0]["imageDigest"], digest)
        self.assertEqual(details[0]["imageTags"], ["h0001"])
        self.assertEqual(details[0]["imageSizeInBytes"], size)
        self.assertGreaterEqual(details[0]["imagePushedAt"].timestamp(), before - 1)
        by_tag = self.ecr.describe_images(repositoryName=self.repository, imageIds=[{"imageTag": "h0001"}])
        self.assertEqual(by_tag["imageDetails"][0]["imageDigest"], digest)
        listed = self.ecr.list_images(repositoryName=self.repository)["imageIds"]
        self.assertEqual(listed, [{"imageDigest": digest, "imageTag": "h0001"}])
        got = self.ecr.batch_get_image(repositoryName=self.repository, imageIds=[{"imageDigest": digest}])
        self.assertEqual("sha256:" + hashlib.sha256(got["images"][0]["imageManifest"].encode()).hexdigest(), digest)

    def test_put_image_of_layers_the_registry_lacks_is_refused(self) -> None:
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2, "digest": "sha256:" + "1" * 64},
                "layers": [],
            }
        )
        error = refused(lambda: self.ecr.put_image(repositoryName=self.repository, imageManifest=manifest, imageTag="x"))
        self.assertEqual(error.code, "LayersNotFoundException", error)


class Deleted(RegistryTest):
    def test_batch_delete_image_deletes_from_the_registry(self) -> None:
        old, _ = push(self.repository, "h0001", b"old layer")
        new, _ = push(self.repository, "h0002", b"new layer")
        answer = self.ecr.batch_delete_image(repositoryName=self.repository, imageIds=[{"imageDigest": old}])
        self.assertEqual(answer["imageIds"], [{"imageDigest": old, "imageTag": "h0001"}])
        self.assertFalse(in_registry(self.repository, old))
        self.assertTrue(in_registry(self.repository, new))
        left = [d["imageDigest"] for d in self.ecr.describe_images(repositoryName=self.repository)["imageDetails"]]
        self.assertEqual(left, [new])
        again = self.ecr.batch_delete_image(repositoryName=self.repository, imageIds=[{"imageDigest": old}])
        self.assertEqual(again["failures"][0]["failureCode"], "ImageNotFound")

    def test_a_repository_with_images_is_deleted_only_by_force_and_its_images_with_it(self) -> None:
        digest, _ = push(self.repository, "h0001", b"only layer")
        error = refused(lambda: self.ecr.delete_repository(repositoryName=self.repository))
        self.assertEqual(error.code, "RepositoryNotEmptyException", error)
        self.ecr.delete_repository(repositoryName=self.repository, force=True)
        self.assertFalse(in_registry(self.repository, digest))

    def test_the_lifecycle_policy_expires_what_its_rules_select_when_asked(self) -> None:
        pushed = []
        for n in range(3):
            pushed.append(push(self.repository, f"h000{n}", f"layer {n}".encode())[0])
            # The images' order is the order ECR first saw them in.
            self.ecr.describe_images(repositoryName=self.repository)
            time.sleep(1.1)
        policy = {
            "rules": [
                {
                    "rulePriority": 1,
                    "selection": {"tagStatus": "tagged", "tagPrefixList": ["h"], "countType": "imageCountMoreThan", "countNumber": 1},
                    "action": {"type": "expire"},
                }
            ]
        }
        self.ecr.put_lifecycle_policy(repositoryName=self.repository, lifecyclePolicyText=json.dumps(policy))
        answer = http(f"{support.endpoint()}/_local-aws/ecr/lifecycle", {"repositoryName": self.repository, "region": REGION})
        self.assertEqual(sorted(e["imageDigest"] for e in answer["expired"]), sorted(pushed[:2]))
        self.assertEqual([in_registry(self.repository, d) for d in pushed], [False, False, True])
        left = [d["imageDigest"] for d in self.ecr.describe_images(repositoryName=self.repository)["imageDetails"]]
        self.assertEqual(left, [pushed[2]])

    def test_images_whose_tag_moved_are_listed_untagged_and_expired_by_an_untagged_rule(self) -> None:
        pushed = []
        for n in range(3):
            pushed.append(push(self.repository, "latest", f"layer {n}".encode())[0])
            # ECR dates an image by when it first lists it, in seconds.
            self.ecr.describe_images(repositoryName=self.repository)
            time.sleep(1.1)
        details = {d["imageDigest"]: d.get("imageTags", []) for d in self.ecr.describe_images(repositoryName=self.repository)["imageDetails"]}
        self.assertEqual(details, {pushed[0]: [], pushed[1]: [], pushed[2]: ["latest"]})
        policy = {
            "rules": [
                {
                    "rulePriority": 1,
                    "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1},
                    "action": {"type": "expire"},
                }
            ]
        }
        self.ecr.put_lifecycle_policy(repositoryName=self.repository, lifecyclePolicyText=json.dumps(policy))
        answer = http(f"{support.endpoint()}/_local-aws/ecr/lifecycle", {"repositoryName": self.repository, "region": REGION})
        self.assertEqual([e["imageDigest"] for e in answer["expired"]], [pushed[0]])
        self.assertEqual([in_registry(self.repository, d) for d in pushed], [False, True, True])


class SwitchedOff(unittest.TestCase):
    def test_plain_moto_lists_nothing_that_was_pushed(self) -> None:
        ecr = client("ecr", support.switched_off())
        repository = name("ext-ecr-off")
        ecr.create_repository(repositoryName=repository)
        try:
            digest, _ = push(repository, "h0001", b"unseen layer")
            self.assertEqual(ecr.describe_images(repositoryName=repository)["imageDetails"], [])
        finally:
            ecr.delete_repository(repositoryName=repository, force=True)
            registry(repository).delete(digest)


if __name__ == "__main__":
    unittest.main()
