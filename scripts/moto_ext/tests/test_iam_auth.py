"""``iam-auth-resources``: requests authorized on the resource ARN AWS
authorizes their action on, with their condition keys, and policies
evaluated as IAM evaluates them.

The evaluator and the targets are checked offline (``iam_policy``,
``iam_targets``); then end to end on a moto of ours that enforces IAM
(``INITIAL_NO_AUTH_ACTION_COUNT``), signed as users whose only policy
names narrow resources: what AWS allows goes through, what it refuses is
answered AccessDenied, as production would.
"""

import json
import unittest
from typing import Any

import boto3
import botocore.config

from .. import iam_policy, iam_targets

from .support import REGION, Server, asked_again, name, refused, throttled

ACCOUNT = "123456789012"
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
XRAY = "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any, condition: Any = None) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


class EvaluationTest(unittest.TestCase):
    def test_resources_match_case_sensitively_with_wildcards(self) -> None:
        p = policy(allow("logs:CreateLogGroup", "arn:aws:logs:*:1:log-group:/app/x:*"))
        self.assertTrue(iam_policy.allowed([p], "logs:createloggroup", "arn:aws:logs:r:1:log-group:/app/x:*"))
        self.assertFalse(iam_policy.allowed([p], "logs:CreateLogGroup", "arn:aws:logs:r:1:log-group:/app/X:*"))
        self.assertFalse(iam_policy.allowed([p], "logs:CreateLogGroup", "arn:aws:logs:r:1:log-group:/app/x"))
        self.assertFalse(iam_policy.allowed([p], "logs:DeleteLogGroup", "arn:aws:logs:r:1:log-group:/app/x:*"))

    def test_an_explicit_deny_wins_and_nothing_allowed_is_denied(self) -> None:
        p = policy(allow("*", "*"), {"Effect": "Deny", "Action": "iam:*", "Resource": "*"})
        self.assertFalse(iam_policy.allowed([p], "iam:GetRole", "arn:aws:iam::1:role/r"))
        self.assertTrue(iam_policy.allowed([p], "lambda:GetFunction", "arn"))
        self.assertFalse(iam_policy.allowed([], "lambda:GetFunction", "arn"))

    def test_conditions(self) -> None:
        tags = {"StringEquals": {"aws:ResourceTag/deployer:app": "shop", "aws:ResourceTag/deployer:stage": ["dev", "prod"]}}
        p = policy(allow("apigateway:GET", "*", tags))
        ours = {"aws:ResourceTag/deployer:app": ["shop"], "aws:ResourceTag/deployer:stage": ["prod"]}
        self.assertTrue(iam_policy.allowed([p], "apigateway:GET", "a", ours))
        # Every key is required; a key the request lacks is false.
        self.assertFalse(iam_policy.allowed([p], "apigateway:GET", "a", {"aws:ResourceTag/deployer:app": ["shop"]}))
        self.assertFalse(iam_policy.allowed([p], "apigateway:GET", "a", {}))
        other = dict(ours, **{"aws:ResourceTag/deployer:stage": ["ci"]})
        self.assertFalse(iam_policy.allowed([p], "apigateway:GET", "a", other))
        # Condition key names are not case sensitive.
        upper = {k.upper(): v for k, v in ours.items()}
        self.assertTrue(iam_policy.allowed([p], "apigateway:GET", "a", upper))

    def test_set_operators_null_like_and_arn(self) -> None:
        keys = {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}
        self.assertTrue(iam_policy.conditions_hold(keys, {"aws:tagkeys": ["a"]}))
        self.assertTrue(iam_policy.conditions_hold(keys, {}))
        self.assertFalse(iam_policy.conditions_hold(keys, {"aws:tagkeys": ["a", "c"]}))
        anyof = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}
        self.assertTrue(iam_policy.conditions_hold(anyof, {"aws:tagkeys": ["c", "a"]}))
        self.assertFalse(iam_policy.conditions_hold(anyof, {}))
        self.assertTrue(iam_policy.conditions_hold({"Null": {"aws:RequestTag/x": "true"}}, {}))
        self.assertFalse(iam_policy.conditions_hold({"Null": {"aws:RequestTag/x": "true"}}, {"aws:requesttag/x": ["1"]}))
        self.assertTrue(iam_policy.conditions_hold({"StringLike": {"k": "shop-*"}}, {"k": ["shop-dev"]}))
        self.assertFalse(iam_policy.conditions_hold({"StringLike": {"k": "shop-*"}}, {"k": ["shoe-dev"]}))
        arns = {"ArnEquals": {"iam:PolicyARN": ["arn:aws:iam::aws:policy/A", "arn:aws:iam::aws:policy/B"]}}
        self.assertTrue(iam_policy.conditions_hold(arns, {"iam:policyarn": ["arn:aws:iam::aws:policy/B"]}))
        self.assertFalse(iam_policy.conditions_hold(arns, {"iam:policyarn": ["arn:aws:iam::aws:policy/AdministratorAccess"]}))
        self.assertTrue(iam_policy.conditions_hold({"StringNotEquals": {"k": "x"}}, {}))
        self.assertFalse(iam_policy.conditions_hold({"NoSuchOperator": {"k": "x"}}, {"k": ["x"]}))


def request(action: str, method: str, path: str, body: Any = b"") -> iam_targets.Request:
    text = json.dumps(body) if isinstance(body, dict) else body
    return iam_targets.Request(action, method, path, text, "us-east-1", ACCOUNT)


class TargetsTest(unittest.TestCase):
    def test_log_groups_stream_and_tag_forms(self) -> None:
        group = "arn:aws:logs:us-east-1:123456789012:log-group:/deployer/locks/a-b"
        on = lambda action, body: iam_targets.target(request(action, "POST", "/", body))[0]  # noqa: E731
        self.assertEqual(on("logs:CreateLogGroup", {"logGroupName": "/deployer/locks/a-b"}), [f"{group}:*"])
        self.assertEqual(on("logs:TagResource", {"resourceArn": group}), [group])
        self.assertEqual(
            on("logs:PutLogEvents", {"logGroupName": "/deployer/locks/a-b", "logStreamName": "s"}),
            [f"{group}:log-stream:s"],
        )
        self.assertEqual(on("logs:DescribeLogGroups", {"logGroupNamePrefix": "/x"}), ["*"])

    def test_insights_queries_on_their_log_groups(self) -> None:
        # "Actions, resources, and condition keys for Amazon CloudWatch
        # Logs": StartQuery on each log group queried; GetQueryResults and
        # StopQuery on no resource (*).
        group = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/a"
        on = lambda action, body: iam_targets.target(request(action, "POST", "/", body))[0]  # noqa: E731
        self.assertEqual(on("logs:StartQuery", {"logGroupName": "/aws/lambda/a"}), [f"{group}:*"])
        self.assertEqual(
            on("logs:StartQuery", {"logGroupNames": ["/aws/lambda/a", "/aws/lambda/b"]}),
            [f"{group}:*", "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/b:*"],
        )
        self.assertEqual(on("logs:StartQuery", {"logGroupIdentifiers": [f"{group}:*"]}), [f"{group}:*"])
        self.assertEqual(on("logs:GetQueryResults", {"queryId": "q"}), ["*"])
        self.assertEqual(on("logs:StopQuery", {"queryId": "q"}), ["*"])

    def test_functions_with_and_without_qualifier(self) -> None:
        fn = "arn:aws:lambda:us-east-1:123456789012:function:shop-dev"
        on = lambda action, method, path: iam_targets.target(request(action, method, path))[0]  # noqa: E731
        self.assertEqual(on("lambda:GetFunction", "GET", "/2015-03-31/functions/shop-dev"), [fn])
        self.assertEqual(on("lambda:InvokeFunction", "POST", "/2015-03-31/functions/shop-dev/invocations?Qualifier=live"), [f"{fn}:live"])
        self.assertEqual(on("lambda:GetFunction", "GET", f"/2015-03-31/functions/{fn}:7"), [f"{fn}:7"])
        self.assertEqual(on("lambda:GetAlias", "GET", "/2015-03-31/functions/shop-dev/aliases/live"), [fn])
        self.assertEqual(
            on("lambda:GetProvisionedConcurrencyConfig", "GET", "/2019-09-30/functions/shop-dev/provisioned-concurrency?Qualifier=live"),
            [f"{fn}:live"],
        )
        self.assertEqual(on("lambda:ListTags", "GET", f"/2017-03-31/tags/{fn}"), [fn])
        self.assertEqual(on("lambda:ListFunctions", "GET", "/2015-03-31/functions/"), ["*"])
        created = iam_targets.target(request("lambda:CreateFunction", "POST", "/2015-03-31/functions", {"FunctionName": "shop-dev"}))
        self.assertEqual(created[0], [fn])

    def test_repositories_roles_and_policy_arn(self) -> None:
        repo = "arn:aws:ecr:us-east-1:123456789012:repository/shop"
        self.assertEqual(iam_targets.target(request("ecr:DescribeRepositories", "POST", "/", {"repositoryNames": ["shop"]}))[0], [repo])
        self.assertEqual(iam_targets.target(request("ecr:GetAuthorizationToken", "POST", "/", {}))[0], ["*"])
        attach = request(
            "iam:AttachRolePolicy",
            "POST",
            "/",
            "Action=AttachRolePolicy&RoleName=shop-dev-exec&PolicyArn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FX",
        )
        resources, context = iam_targets.target(attach)
        self.assertEqual(resources, ["arn:aws:iam::123456789012:role/shop-dev-exec"])
        self.assertEqual(context, {"iam:PolicyARN": ["arn:aws:iam::aws:policy/X"]})

    def test_api_gateway_request_tags(self) -> None:
        create = request("apigateway:POST", "POST", "/restapis", {"name": "x", "tags": {"deployer:app": "shop"}})
        resources, context = iam_targets.target(create)
        self.assertEqual(resources, ["arn:aws:apigateway:us-east-1::/restapis"])
        self.assertEqual(context, {"aws:RequestTag/deployer:app": ["shop"], "aws:TagKeys": ["deployer:app"]})
        domain = request("apigateway:POST", "POST", "/domainnames", {"domainName": "f.example.com", "tags": {"deployer:app": "shop"}})
        self.assertEqual(iam_targets.target(domain)[1], {"aws:RequestTag/deployer:app": ["shop"], "aws:TagKeys": ["deployer:app"]})
        untag = request("apigateway:DELETE", "DELETE", "/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Frestapis%2Fx?tagKeys=a")
        self.assertEqual(iam_targets.target(untag)[1], {"aws:TagKeys": ["a"]})


class EnforcedTest(unittest.TestCase):
    """On a moto that enforces IAM: users with narrow policies."""

    server: Server
    admin: boto3.Session
    user: boto3.Session

    @classmethod
    def setUpClass(cls) -> None:
        cls.app = name("shop")
        fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{cls.app}-dev"
        group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/deployer/locks/{cls.app}-dev"
        narrow = policy(
            # The bare log-group ARN only: tag actions pass, CreateLogGroup not.
            allow(["logs:CreateLogGroup", "logs:ListTagsForResource"], [group]),
            allow(["logs:CreateLogGroup", "logs:DeleteLogGroup"], [f"{group}/ok:*"]),
            # The unqualified function only.
            allow(["lambda:GetFunction", "lambda:InvokeFunction"], [fn]),
            allow(
                ["apigateway:GET", "apigateway:DELETE", "apigateway:PATCH", "apigateway:PUT"],
                [f"arn:aws:apigateway:{REGION}::/restapis/*", f"arn:aws:apigateway:{REGION}::/tags/*"],
                {"StringEquals": {"aws:ResourceTag/deployer:app": cls.app}},
            ),
            # Only the basic execution policy may be attached to the role.
            allow(
                "iam:AttachRolePolicy",
                f"arn:aws:iam::{ACCOUNT}:role/{cls.app}-dev-exec",
                {"ArnEquals": {"iam:PolicyARN": BASIC}},
            ),
            # The role may be passed, but only to EC2: not to Lambda.
            allow("lambda:CreateFunction", fn),
            allow(
                "iam:PassRole",
                f"arn:aws:iam::{ACCOUNT}:role/{cls.app}-dev-exec",
                {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            ),
            allow(
                "apigateway:POST",
                [f"arn:aws:apigateway:{REGION}::/restapis"],
                {"StringEquals": {"aws:RequestTag/deployer:app": cls.app}},
            ),
        )
        everything = policy(allow("*", "*"))
        # Six requests unauthenticated: two users, their keys and policies.
        cls.server = Server({"INITIAL_NO_AUTH_ACTION_COUNT": "6", "LOCAL_AWS_TIME_SCALE": "0.1"}).wait()
        bootstrap = boto3.client(
            "iam",
            endpoint_url=cls.server.url,
            region_name=REGION,
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        sessions = []
        for user, document in [("user", narrow), ("admin", everything)]:
            bootstrap.create_user(UserName=user)
            key = bootstrap.create_access_key(UserName=user)["AccessKey"]
            bootstrap.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(document))
            sessions.append(
                boto3.Session(
                    aws_access_key_id=key["AccessKeyId"],
                    aws_secret_access_key=key["SecretAccessKey"],
                    region_name=REGION,
                )
            )
        cls.user, cls.admin = sessions

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def client(self, session: boto3.Session, service: str) -> Any:
        return session.client(
            service,
            endpoint_url=self.server.url,
            config=botocore.config.Config(retries={"total_max_attempts": 1}),
        )

    def denied(self, call: Any, action: str, resource: str) -> None:
        err = refused(call)
        self.assertIsNotNone(err, f"{action} on {resource} was allowed")
        assert err is not None
        self.assertIn("AccessDenied", err.code, err)
        self.assertIn(f"{action} on resource: {resource}", err.message)

    def test_log_groups_need_the_star_form_but_tags_the_bare_arn(self) -> None:
        logs = self.client(self.user, "logs")
        group = f"/deployer/locks/{self.app}-dev"
        arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
        self.denied(lambda: logs.create_log_group(logGroupName=group), "logs:CreateLogGroup", f"{arn}:*")
        # Below the lock's name: the `NAME/ok:*` form covers it.
        logs.create_log_group(logGroupName=f"{group}/ok")
        logs.delete_log_group(logGroupName=f"{group}/ok")
        self.client(self.admin, "logs").create_log_group(logGroupName=group)
        logs.list_tags_for_resource(resourceArn=arn)

    def test_a_qualified_invoke_needs_the_qualified_arn(self) -> None:
        fn = f"{self.app}-dev"
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}"
        lam = self.client(self.user, "lambda")
        # Not created: the unqualified GetFunction is allowed and answers 404.
        err = refused(lambda: lam.get_function(FunctionName=fn))
        self.assertIsNotNone(err)
        assert err is not None
        self.assertEqual(err.code, "ResourceNotFoundException")
        self.denied(lambda: lam.get_function(FunctionName=fn, Qualifier="live"), "lambda:GetFunction", f"{arn}:live")
        self.denied(lambda: lam.invoke(FunctionName=f"{fn}:live"), "lambda:InvokeFunction", f"{arn}:live")

    def test_iam_condition_keys_policy_arn_and_passed_to_service(self) -> None:
        role = f"{self.app}-dev-exec"
        role_arn = f"arn:aws:iam::{ACCOUNT}:role/{role}"
        trust = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
        self.client(self.admin, "iam").create_role(RoleName=role, AssumeRolePolicyDocument=trust)
        iam = self.client(self.user, "iam")
        iam.attach_role_policy(RoleName=role, PolicyArn=BASIC)
        self.denied(lambda: iam.attach_role_policy(RoleName=role, PolicyArn=XRAY), "iam:AttachRolePolicy", role_arn)
        lam = self.client(self.user, "lambda")
        self.denied(
            lambda: lam.create_function(
                FunctionName=f"{self.app}-dev",
                Role=role_arn,
                PackageType="Image",
                Code={"ImageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/x@sha256:{'0' * 64}"},
            ),
            "iam:PassRole",
            role_arn,
        )

    def test_api_gateway_is_scoped_by_tags(self) -> None:
        ours = self.client(self.user, "apigateway")
        admin = self.client(self.admin, "apigateway")
        theirs = admin.create_rest_api(name="theirs", tags={"deployer:app": "other"})["id"]
        mine = ours.create_rest_api(name="mine", tags={"deployer:app": self.app})["id"]
        ours.get_rest_api(restApiId=mine)
        path = lambda api: f"arn:aws:apigateway:{REGION}::/restapis/{api}"  # noqa: E731
        self.denied(lambda: ours.get_rest_api(restApiId=theirs), "apigateway:GET", path(theirs))
        self.denied(lambda: ours.delete_rest_api(restApiId=theirs), "apigateway:DELETE", path(theirs))
        # A child of the API inherits its tags.
        root = admin.get_resources(restApiId=theirs)["items"][0]["id"]
        self.denied(
            lambda: ours.get_resource(restApiId=theirs, resourceId=root),
            "apigateway:GET",
            f"{path(theirs)}/resources/{root}",
        )
        ours.get_resource(restApiId=mine, resourceId=admin.get_resources(restApiId=mine)["items"][0]["id"])
        # Creating needs our tag in the request.
        self.denied(lambda: ours.create_rest_api(name="untagged"), "apigateway:POST", f"arn:aws:apigateway:{REGION}::/restapis")
        self.denied(
            lambda: ours.create_rest_api(name="other", tags={"deployer:app": "other"}),
            "apigateway:POST",
            f"arn:aws:apigateway:{REGION}::/restapis",
        )
        # TagResource is checked against the tags of what it tags; its path
        # carries that ARN percent-encoded, `/` as `%2F`, as signed.
        # (moto tags stages only, as /tags/{stage ARN}.)
        tags = f"arn:aws:apigateway:{REGION}::/tags/"
        for api in (mine, theirs):
            method = {"restApiId": api, "resourceId": admin.get_resources(restApiId=api)["items"][0]["id"], "httpMethod": "GET"}
            admin.put_method(authorizationType="NONE", **method)
            admin.put_integration(type="MOCK", **method)
            asked_again(lambda: admin.create_deployment(restApiId=api, stageName="s"), throttled)
        ours.tag_resource(resourceArn=f"{path(mine)}/stages/s", tags={"team": "a"})
        err = refused(lambda: ours.tag_resource(resourceArn=f"{path(theirs)}/stages/s", tags={"deployer:app": self.app}))
        self.assertIsNotNone(err)
        assert err is not None
        self.assertIn("AccessDenied", err.code, err)
        self.assertIn(f"apigateway:PUT on resource: {tags}", err.message)
        admin.untag_resource(resourceArn=f"{path(theirs)}/stages/s", tagKeys=["none"])
        admin.get_rest_api(restApiId=theirs)
        ours.delete_rest_api(restApiId=mine)


if __name__ == "__main__":
    unittest.main()
