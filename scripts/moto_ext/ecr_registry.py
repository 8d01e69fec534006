"""``ecr-registry``: ECR is its registry.

In AWS a repository's images are what was pushed to its registry: an image
pushed with ``docker push`` is listed by DescribeImages, ListImages and
BatchGetImage under the digest the registry serves, with its tags, size and
push time; BatchDeleteImage deletes it from the registry; DeleteRepository
refuses a repository that still holds images unless forced, and then deletes
them too; and the repository's lifecycle policy expires what its rules
select ("Amazon ECR API Reference": DescribeImages, ListImages,
BatchGetImage, BatchDeleteImage, DeleteRepository; "Lifecycle policies in
Amazon ECR" and "Lifecycle policy properties in Amazon ECR" in the Amazon
ECR User Guide). moto keeps a list of its own that only PutImage fills, so
locally every push was invisible to ECR's API and no deletion reached the
registry.

Here the repository's images are read from the local Docker distribution
registry (``scripts/local-cloud`` serves it on 127.0.0.1:443 under the
repository URI's host name, deletes enabled) each time ECR is asked about
them, through the registry's HTTP API: ``GET /v2/<name>/tags/list``, each
tag's manifest (its ``Docker-Content-Digest`` is the image digest), and the
manifests of digests seen before that lost their tags (untagged images, as
ECR lists them). Deletion is ``DELETE /v2/<name>/manifests/<digest>``.
PutImage puts the manifest into the registry, which refuses one whose layers
it lacks, as ECR does (LayersNotFoundException).

What differs from AWS, and why:

- ``imagePushedAt`` is when this moto first saw the image: the registry's
  API does not tell push times. ``up`` asks ECR after each push, so images
  are still ordered as they were pushed; a restarted moto dates every image
  it finds to its first look.
- ``imageSizeInBytes`` is the sum of the manifest's (compressed) layer
  sizes, what ECR reports for a Docker image manifest ("ImageDetail":
  "imageSizeInBytes").
- The registry cannot remove one tag of several (distribution 2.8 deletes
  manifests only): BatchDeleteImage by the tag of an image that has other
  tags fails for that image instead of untagging it.
- AWS applies lifecycle policies within 24 hours of a push; here they apply
  when asked: ``POST /_local-aws/ecr/lifecycle`` with
  ``{"repositoryName": ..., "region": ...}`` answers the images expired.
"""

import json
import re
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from moto.core.exceptions import JsonRESTError
from moto.ecr.exceptions import RepositoryNotEmptyException
from moto.ecr.models import ECRBackend, Image, Repository, ecr_backends

from . import patching, routes, settings

NAME = "ecr-registry"
ACCOUNT = "123456789012"
# The manifest kinds a registry may hold; asked for all, it answers the one
# it has (and its digest is then that manifest's own).
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
DIGEST = re.compile(r"^[0-9a-zA-Z_+.-]+:[0-9a-fA-F]{64}$")
# dockerd trusts the registry's certificate from here (scripts/local-cloud
# copies it in); so does this client.
CERTS_D = Path("/etc/docker/certs.d")
TIMEOUT = 10

# One sync at a time: moto server answers requests on several threads.
_LOCK = threading.RLock()


class RegistryUnavailable(JsonRESTError):
    """The registry did not answer as a registry: for ECR, a fault of its own
    (ServerException, HTTP 500, "These errors are usually caused by a
    server-side issue")."""

    code = 500

    def __init__(self, message: str):
        super().__init__("ServerException", f"the local registry: {message}")


class LayersNotFound(JsonRESTError):
    """PutImage of a manifest whose layers the registry lacks (PutImage:
    LayersNotFoundException, HTTP 400)."""

    code = 400

    def __init__(self, message: str):
        super().__init__("LayersNotFoundException", message)


class RegistryImage(Image):
    """An image as the registry holds it: its digest, manifest and tags, the
    size of its layers and when this moto first saw it."""

    def __init__(self, repository: Repository, digest: str, manifest: str, media_type: str, tags: list[str], seen: int):
        super().__init__(
            repository.account_id,
            tags[0] if tags else None,  # type: ignore[arg-type]
            manifest,
            repository.name,
            media_type,
            digest,
            repository.registry_id,
        )
        self.image_tags = list(tags)
        self.image_pushed_at = seen

    def get_image_size_in_bytes(self) -> Optional[int]:
        try:
            parsed = json.loads(self.image_manifest)
        except json.JSONDecodeError:
            return None
        if "layers" in parsed:
            return sum(int(layer.get("size", 0)) for layer in parsed["layers"])
        return None


class Registry:
    """The registry's HTTP API for one repository."""

    def __init__(self, host: str, name: str):
        self.host = host
        self.name = name
        self.context = ssl.create_default_context()
        for cert in sorted((CERTS_D / self.host).glob("*.crt")):
            self.context.load_verify_locations(cafile=str(cert))

    def _request(self, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict[str, str]] = None) -> tuple[int, dict[str, str], bytes]:
        url = f"https://{self.host}/v2/{self.name}/{path}"
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=TIMEOUT) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()
        except (urllib.error.URLError, OSError) as err:
            raise RegistryUnavailable(f"{method} {url}: {err}") from err

    def tags(self) -> list[str]:
        """Every tag; none when the registry has no such repository yet."""
        tags: list[str] = []
        path = "tags/list?n=1000"
        while path:
            status, headers, body = self._request("GET", path)
            if status == 404:
                return tags
            if status != 200:
                raise RegistryUnavailable(f"tags of {self.name}: HTTP {status} {body[:200]!r}")
            tags.extend(json.loads(body).get("tags") or [])
            # Pagination: `Link: </v2/<name>/tags/list?last=...&n=...>; rel="next"`.
            link = headers.get("Link", "")
            found = re.match(r'<[^>]*/tags/list\?([^>]*)>', link)
            path = f"tags/list?{found.group(1)}" if found else ""
        return tags

    def manifest(self, reference: str) -> Optional[tuple[str, str, str]]:
        """(digest, manifest, media type) of a tag or digest; ``None`` when
        the registry has no such manifest."""
        status, headers, body = self._request("GET", f"manifests/{reference}", headers={"Accept": MANIFEST_TYPES})
        if status == 404:
            return None
        if status != 200:
            raise RegistryUnavailable(f"manifest {self.name}:{reference}: HTTP {status} {body[:200]!r}")
        digest = headers.get("Docker-Content-Digest", "")
        if not DIGEST.match(digest):
            raise RegistryUnavailable(f"manifest {self.name}:{reference} came without a digest")
        return digest, body.decode(), headers.get("Content-Type", "")

    def delete(self, digest: str) -> None:
        status, _, body = self._request("DELETE", f"manifests/{digest}")
        if status not in (202, 404):
            raise RegistryUnavailable(f"DELETE {self.name}@{digest}: HTTP {status} {body[:200]!r}")

    def put(self, tag: str, manifest: str, media_type: str) -> str:
        status, headers, body = self._request(
            "PUT", f"manifests/{tag}", body=manifest.encode(), headers={"Content-Type": media_type}
        )
        if status == 400 and b"BLOB_UNKNOWN" in body:
            raise LayersNotFound(f"the image's layers are not in the repository '{self.name}'")
        if status != 201:
            raise RegistryUnavailable(f"PUT {self.name}:{tag}: HTTP {status} {body[:200]!r}")
        return headers.get("Docker-Content-Digest", "")


def _registry(repository: Repository) -> Registry:
    return Registry(repository.uri.split("/", 1)[0], repository.name)


def sync(repository: Repository) -> None:
    """Makes ``repository.images`` what the registry holds."""
    with _LOCK:
        registry = _registry(repository)
        seen: dict[str, int] = repository.__dict__.setdefault("_moto_ext_seen", {})
        manifests: dict[str, tuple[str, str]] = repository.__dict__.setdefault("_moto_ext_manifests", {})
        tags_of: dict[str, list[str]] = {}
        for tag in registry.tags():
            found = registry.manifest(tag)
            if found is None:
                continue  # deleted meanwhile
            digest, manifest, media_type = found
            manifests[digest] = (manifest, media_type)
            tags_of.setdefault(digest, []).append(tag)
        # Digests seen before whose tags are gone: untagged images while the
        # registry still serves their manifest.
        for digest in list(seen):
            if digest in tags_of:
                continue
            if registry.manifest(digest) is None:
                del seen[digest]
                manifests.pop(digest, None)
            else:
                tags_of[digest] = []
        now = int(time.time())
        for digest in tags_of:
            seen.setdefault(digest, now)
        repository.images = [
            RegistryImage(repository, digest, *manifests[digest], sorted(tags), seen[digest])
            for digest, tags in sorted(tags_of.items(), key=lambda item: (seen[item[0]], item[0]))
        ]


def _repository(backend: ECRBackend, name: str, registry_id: Optional[str]) -> Repository:
    return backend._get_repository(name, registry_id)


def _failure(image_id: dict[str, str], code: str, reason: str) -> dict[str, Any]:
    return {"imageId": dict(image_id), "failureCode": code, "failureReason": reason}


def delete_images(repository: Repository, image_ids: list[dict[str, str]]) -> dict[str, Any]:
    """BatchDeleteImage against the registry: each image by digest, by tag,
    or both; failures per image as ECR reports them."""
    sync(repository)
    registry = _registry(repository)
    answer: dict[str, Any] = {"imageIds": [], "failures": []}
    for image_id in image_ids:
        digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
        if digest is None and tag is None:
            answer["failures"].append(
                _failure(image_id, "MissingDigestAndTag", "Invalid request parameters: both tag and digest cannot be null")
            )
            continue
        if digest is not None and not DIGEST.match(digest):
            answer["failures"].append(
                _failure(
                    image_id,
                    "InvalidImageDigest",
                    "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'",
                )
            )
            continue
        image = next(
            (
                i
                for i in repository.images
                if (digest is None or i.image_digest == digest) and (tag is None or tag in i.image_tags)
            ),
            None,
        )
        if image is None:
            answer["failures"].append(_failure(image_id, "ImageNotFound", "Requested image not found"))
            continue
        if digest is None and len(image.image_tags) > 1:
            answer["failures"].append(
                _failure(
                    image_id,
                    "UnknownError",
                    "the local registry cannot remove one tag of an image that has others; delete it by digest",
                )
            )
            continue
        registry.delete(image.image_digest)
        for each in image.image_tags or [None]:
            deleted = {"imageDigest": image.image_digest}
            if each is not None:
                deleted["imageTag"] = each
            answer["imageIds"].append(deleted)
    sync(repository)
    return answer


# ------------------------------------------------------------ lifecycle

def _selected(image: Image, selection: dict[str, Any]) -> bool:
    """Whether a rule's tag requirements select the image ("Lifecycle policy
    properties in Amazon ECR": tagStatus; with several prefixes or patterns,
    only images with tags matching all of them are selected)."""
    status = selection.get("tagStatus", "any")
    tags = image.image_tags
    if status == "untagged":
        return not tags
    if status == "any":
        return True
    if not tags:
        return False
    prefixes = selection.get("tagPrefixList") or []
    patterns = selection.get("tagPatternList") or []
    by_prefix = all(any(t.startswith(p) for t in tags) for p in prefixes)
    by_pattern = all(
        any(re.fullmatch(".*".join(re.escape(part) for part in p.split("*")), t) for t in tags) for p in patterns
    )
    return by_prefix and by_pattern


def expired_by_policy(images: list[Image], policy_text: str, now: int) -> list[Image]:
    """The images the lifecycle policy expires: rules in rulePriority order;
    an image selected by a rule's tag requirements is never expired by a
    rule of lower priority ("Lifecycle policies in Amazon ECR": "How
    lifecycle policies work")."""
    rules = sorted(json.loads(policy_text).get("rules", []), key=lambda r: int(r["rulePriority"]))
    left = list(images)
    expired: list[Image] = []
    for rule in rules:
        selection = rule.get("selection", {})
        chosen = [i for i in left if _selected(i, selection)]
        left = [i for i in left if i not in chosen]
        count = int(selection.get("countNumber", 0))
        if selection.get("countType") == "imageCountMoreThan":
            chosen.sort(key=lambda i: (i.image_pushed_at, i.image_digest), reverse=True)
            expired.extend(chosen[count:])
        elif selection.get("countType") == "sinceImagePushed":
            expired.extend(i for i in chosen if now - i.image_pushed_at > count * 86400)
    return expired


def _lifecycle(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    def answer(status: str, body: dict[str, Any]) -> Iterable[bytes]:
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    if environ.get("REQUEST_METHOD") != "POST":
        return answer("405 Method Not Allowed", {"message": "POST {repositoryName, region}"})
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        asked = json.loads(environ["wsgi.input"].read(length) or b"{}")
        name = asked["repositoryName"]
    except (ValueError, KeyError) as err:
        return answer("400 Bad Request", {"message": f"a JSON body with repositoryName is needed: {err}"})
    backend = ecr_backends[asked.get("accountId", ACCOUNT)][asked.get("region", "us-east-1")]
    repository = backend.repositories.get(name)
    if repository is None:
        return answer("404 Not Found", {"message": f"no repository {name}"})
    if not repository.lifecycle_policy:
        return answer("200 OK", {"expired": []})
    with _LOCK:
        sync(repository)
        expired = expired_by_policy(repository.images, repository.lifecycle_policy, int(time.time()))
        delete_images(repository, [{"imageDigest": i.image_digest} for i in expired])
    return answer(
        "200 OK", {"expired": [{"imageDigest": i.image_digest, "imageTags": i.image_tags} for i in expired]}
    )


def install() -> list[str]:
    if not settings.enabled(NAME):
        return []

    for method in ("list_images", "describe_images", "batch_get_image"):

        def reading(original, self, repository_name, registry_id=None, *args, **kwargs):  # type: ignore[no-untyped-def]
            sync(_repository(self, repository_name, registry_id))
            return original(self, repository_name, registry_id, *args, **kwargs)

        patching.replace(ECRBackend, method)(reading)

    @patching.replace(ECRBackend, "batch_delete_image")
    def batch_delete_image(original, self, repository_name, registry_id=None, image_ids=None):  # type: ignore[no-untyped-def]
        repository = _repository(self, repository_name, registry_id)
        if not image_ids:
            return original(self, repository_name, registry_id, image_ids)
        return delete_images(repository, image_ids)

    @patching.replace(ECRBackend, "delete_repository")
    def delete_repository(original, self, repository_name, registry_id=None, force=False):  # type: ignore[no-untyped-def]
        repository = _repository(self, repository_name, registry_id)
        sync(repository)
        if repository.images and not force:
            raise RepositoryNotEmptyException(repository_name, registry_id or self.account_id)
        registry = _registry(repository)
        for image in repository.images:
            registry.delete(image.image_digest)
        repository.images = []
        return original(self, repository_name, registry_id, force)

    @patching.replace(ECRBackend, "put_image")
    def put_image(original, self, repository_name, image_manifest, image_tag, image_manifest_mediatype=None, digest=None):  # type: ignore[no-untyped-def]
        repository = _repository(self, repository_name, None)
        sync(repository)
        if image_tag and repository.is_tag_immutable() and any(image_tag in i.image_tags for i in repository.images):
            # moto's own check, with the registry's images.
            return original(self, repository_name, image_manifest, image_tag, image_manifest_mediatype, digest)
        media_type = image_manifest_mediatype or json.loads(image_manifest).get("mediaType", "")
        registry_digest = _registry(repository).put(image_tag or "latest", image_manifest, media_type)
        if digest and registry_digest and digest != registry_digest:
            raise JsonRESTError("ImageDigestDoesNotMatchException", f"the manifest's digest is {registry_digest}")
        sync(repository)
        return next(i for i in repository.images if i.image_digest == registry_digest)

    routes.route("/_local-aws/ecr/lifecycle", _lifecycle)
    return [NAME]
