"""The execution environments cannot be turned against their host
(lambda_environments): no capabilities, no new privileges, a read-only root
with a tmpfs ``/tmp``, not the host's network, and only images the local
ECR registry holds."""

import botocore.exceptions
import docker

from .support import ACCOUNT, REGION, FunctionsTest, environments, fixture_image, invoke, name, require_data_plane


def setUpModule() -> None:
    require_data_plane()


class Hardened(FunctionsTest):
    def test_an_environment_runs_without_capabilities_privileges_or_the_hosts_network(self) -> None:
        function = self.active_function(prefix="rt-hard")
        answer = invoke(function, {"mode": "echo"})
        self.assertNotIn("FunctionError", answer, answer["Body"])
        [environment] = environments(function)
        host = environment.attrs["HostConfig"]
        self.assertEqual(host["CapDrop"], ["ALL"])
        self.assertFalse(host.get("CapAdd"))
        self.assertIn("no-new-privileges", host["SecurityOpt"])
        self.assertTrue(host["ReadonlyRootfs"])
        self.assertIn("/tmp", host["Tmpfs"])
        self.assertFalse(host["Privileged"])
        self.assertNotEqual(host["NetworkMode"], "host")
        self.assertEqual(environment.attrs["Config"]["User"], "993:990")

    def refusal(self, image: str) -> str:
        function = self.active_function(prefix="rt-refused", image=image)
        with self.assertRaises(botocore.exceptions.ClientError) as refused:
            invoke(function, {"mode": "echo"})
        self.assertEqual(environments(function, exited_too=True), [], "a container was made")
        return str(refused.exception)

    def test_an_image_outside_ecr_is_refused(self) -> None:
        self.assertIn("is not valid", self.refusal("docker.io/library/busybox:latest"))

    def test_an_image_named_like_ecr_that_the_registry_lacks_is_refused(self) -> None:
        # Only in the local engine, under the registry's name: never pushed.
        unpushed = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name('ext-unpushed')}"
        engine = docker.from_env()
        engine.images.get(fixture_image()).tag(unpushed, tag="t1")
        self.addCleanup(engine.images.remove, f"{unpushed}:t1")
        self.assertIn("does not exist", self.refusal(f"{unpushed}:t1"))
