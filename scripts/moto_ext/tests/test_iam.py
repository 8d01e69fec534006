"""``iam-get-role``, ``iam-role-assumable``, ``iam-xray`` and
``iam-delete-conflict``: in force (on the moto with wider windows,
``support.wide_windows``), and off with their switches."""

import time
import unittest

from . import support
from .support import FunctionsTest, Stopwatch, client, inside_window, new_role, refused, window

XRAY = "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


class GetRole(unittest.TestCase):
    def test_a_new_role_is_not_found_at_first(self) -> None:
        url = support.wide_windows()
        iam = client("iam", url)

        def found_at_once(watch: Stopwatch) -> str:
            watch.start()
            role, _ = new_role(url)
            err = refused(lambda: iam.get_role(RoleName=role))
            self.assertEqual((err and err.status, err and err.code), (404, "NoSuchEntity"), err)
            return role

        role = inside_window(url, "iam-get-role", found_at_once)
        time.sleep(window(url, "iam-get-role"))
        self.assertEqual(iam.get_role(RoleName=role)["Role"]["RoleName"], role)

    def test_switched_off_it_is_found_at_once(self) -> None:
        url = support.switched_off()
        role, _ = new_role(url)
        self.assertEqual(client("iam", url).get_role(RoleName=role)["Role"]["RoleName"], role)


class RoleAssumable(FunctionsTest):
    def test_lambda_cannot_assume_a_new_role_at_first(self) -> None:
        url = support.wide_windows()

        def assumed_at_once(watch: Stopwatch) -> str:
            watch.start()
            _, arn = new_role(url)
            err = refused(lambda: self.new_function(url, role=arn, wait_for_role=False))
            self.assertEqual((err and err.status, err and err.code), (400, "InvalidParameterValueException"), err)
            self.assertEqual(err.message, "The role defined for the function cannot be assumed by Lambda.")
            return arn

        arn = inside_window(url, "iam-role-assumable", assumed_at_once)
        time.sleep(window(url, "iam-role-assumable"))
        self.new_function(url, role=arn, wait_for_role=False)

    def test_switched_off_a_new_role_is_assumable_at_once(self) -> None:
        url = support.switched_off()
        _, arn = new_role(url)
        self.new_function(url, role=arn, wait_for_role=False)


class XRay(FunctionsTest):
    def test_tracing_needs_a_propagated_xray_policy_on_create(self) -> None:
        url = support.wide_windows()
        iam = client("iam", url)
        traced = {"TracingConfig": {"Mode": "Active"}}

        def traced_at_once(watch: Stopwatch) -> str:
            role, arn = new_role(url)
            iam.attach_role_policy(RoleName=role, PolicyArn=BASIC)
            # No policy allows PutTraceSegments: refused, however long one
            # waits (asked again only while Lambda cannot assume the new role
            # yet).
            err = refused(lambda: self.new_function(url, role=arn, **traced))
            self.assertEqual((err and err.status, err and err.code), (400, "InvalidParameterValueException"), err)
            self.assertIn("does not have permissions to call PutTraceSegments on XRAY", err.message)

            watch.start()
            iam.attach_role_policy(RoleName=role, PolicyArn=XRAY)
            err = refused(lambda: self.new_function(url, role=arn, **traced))
            self.assertIn("PutTraceSegments", err.message if err else "created with a policy attached just now")
            return arn

        arn = inside_window(url, "iam-xray", traced_at_once)
        time.sleep(window(url, "iam-xray"))
        self.new_function(url, role=arn, **traced)

    def test_tracing_needs_a_propagated_xray_policy_on_update(self) -> None:
        url = support.wide_windows()
        iam = client("iam", url)
        lam = client("lambda", url)

        def traced_at_once(watch: Stopwatch) -> str:
            role, arn = new_role(url)
            function = self.active_function(url, role=arn)
            watch.start()
            iam.attach_role_policy(RoleName=role, PolicyArn=XRAY)
            err = refused(
                lambda: lam.update_function_configuration(FunctionName=function, TracingConfig={"Mode": "Active"})
            )
            self.assertEqual((err and err.status, err and err.code), (400, "InvalidParameterValueException"), err)
            self.assertIn("PutTraceSegments", err.message)
            return function

        function = inside_window(url, "iam-xray", traced_at_once)
        time.sleep(window(url, "iam-xray"))
        lam.update_function_configuration(FunctionName=function, TracingConfig={"Mode": "Active"})

    def test_switched_off_tracing_needs_no_policy(self) -> None:
        url = support.switched_off()
        _, arn = new_role(url)
        function = self.new_function(url, role=arn, TracingConfig={"Mode": "Active"})
        client("lambda", url).update_function_configuration(FunctionName=function, TracingConfig={"Mode": "Active"})


class DeleteConflict(unittest.TestCase):
    def test_a_role_just_detached_cannot_be_deleted_at_first(self) -> None:
        url = support.wide_windows()
        iam = client("iam", url)

        def deleted_at_once(watch: Stopwatch) -> str:
            role, _ = new_role(url)
            iam.attach_role_policy(RoleName=role, PolicyArn=BASIC)
            watch.start()
            iam.detach_role_policy(RoleName=role, PolicyArn=BASIC)
            err = refused(lambda: iam.delete_role(RoleName=role))
            self.assertEqual((err and err.status, err and err.code), (409, "DeleteConflict"), err)
            self.assertEqual(err.message, "Cannot delete entity, must detach all policies first.")
            return role

        role = inside_window(url, "iam-delete-conflict", deleted_at_once)
        time.sleep(window(url, "iam-delete-conflict"))
        iam.delete_role(RoleName=role)

    def test_switched_off_it_is_deleted_at_once(self) -> None:
        url = support.switched_off()
        iam = client("iam", url)
        role, _ = new_role(url)
        iam.attach_role_policy(RoleName=role, PolicyArn=BASIC)
        iam.detach_role_policy(RoleName=role, PolicyArn=BASIC)
        iam.delete_role(RoleName=role)


if __name__ == "__main__":
    unittest.main()
