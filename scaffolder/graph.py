"""Run a Pulumi program under Pulumi's mocks and record its resource graph.

No Pulumi CLI and no cloud: the program runs in-process against a mock resource monitor
that records every registration (type, name, parent, dependencies, inputs). The graph is what
``preview``, ``graph``, ``check`` and ``cost`` work on.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import re
import runpy
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .stacks.regions import DEFAULT_REGION

__all__ = ["MOCK_ACCOUNT_ID", "MOCK_DEPLOYER_ROLE", "MOCK_ORGANIZATION", "STACK_REFERENCE",
           "GraphResource", "ProgramError", "ResourceGraph", "merge_graphs", "run_program",
           "run_under_mocks", "stack_reference_name"]

# the documentation account id AWS uses in its examples; never a real account
MOCK_ACCOUNT_ID = "123456789012"
# who runs the mocked programs: a role session, as with SSO or a CI role
MOCK_DEPLOYER_ROLE = f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/mock-deployer"
_RUN_LOCK = threading.Lock()  # the Pulumi runtime is process-global: one run at a time


@dataclass(frozen=True)
class GraphResource:
    """One registered resource: a custom resource (cloud object) or a component."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    dependencies: tuple[str, ...]
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: resource options that decide what a real update or delete does: ``protect``,
    #: ``retain_on_delete``, ``delete_before_replace`` (booleans, only when set) and
    #: ``ignore_changes``, ``replace_on_changes`` (property paths)
    options: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def component(self) -> bool:
        return not self.custom


@dataclass
class ResourceGraph:
    """All resources a program registered (sorted by URN), plus its stack outputs."""

    project: str
    stack: str
    resources: list[GraphResource]
    outputs: dict[str, Any] = field(default_factory=dict)

    def by_urn(self) -> dict[str, GraphResource]:
        return {r.urn: r for r in self.resources}

    def of_type(self, *types: str) -> list[GraphResource]:
        return [r for r in self.resources if r.type in types]

    def named(self, name: str) -> GraphResource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def children(self, urn: str) -> list[GraphResource]:
        return [r for r in self.resources if r.parent == urn]

    def tree(self) -> list[tuple[int, GraphResource]]:
        """(depth, resource) in tree order: each parent before its children, by name."""
        kids: dict[str | None, list[GraphResource]] = {}
        known = {r.urn for r in self.resources}
        for resource in self.resources:
            parent = resource.parent if resource.parent in known else None
            kids.setdefault(parent, []).append(resource)
        ordered: list[tuple[int, GraphResource]] = []

        def walk(parent: str | None, depth: int) -> None:
            for child in sorted(kids.get(parent, []), key=lambda r: (r.name, r.type)):
                ordered.append((depth, child))
                walk(child.urn, depth + 1)

        walk(None, 0)
        return ordered

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "stack": self.stack,
            "resources": [{k: v for k, v in asdict(r).items() if k != "outputs"}
                          for r in self.resources],
            "outputs": self.outputs,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, default=str)


class ProgramError(Exception):
    """The program raised. ``location`` is the innermost frame in the user's program folder,
    ``traceback`` the frames in that folder only (mlscaffold's and Pulumi's are left out)."""

    def __init__(self, error: BaseException, location: str | None,
                 traceback: str = "") -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error
        self.location = location
        self.traceback = traceback


def _arn(resource_type: str, name: str, region: str) -> str:
    # aws:s3/bucket:Bucket -> service s3, kind bucket
    service = resource_type.split(":")[1].split("/")[0].lower()
    kind = resource_type.rsplit(":", 1)[-1].lower()
    if service in {"s3"}:
        return f"arn:aws:s3:::{name}"
    if service in {"iam"}:
        kind = "instance-profile" if kind == "instanceprofile" else kind
        return f"arn:aws:iam::{MOCK_ACCOUNT_ID}:{kind}/{name}"
    if service in {"sqs"}:
        return f"arn:aws:sqs:{region}:{MOCK_ACCOUNT_ID}:{name}"
    return f"arn:aws:{service}:{region}:{MOCK_ACCOUNT_ID}:{kind}/{name}"


# outputs a real provider computes that components read; keyed by resource type
def _computed_outputs(resource_type: str, name: str, inputs: Mapping[str, Any],
                      region: str) -> dict[str, Any]:
    physical = inputs.get("name") or inputs.get("bucket") or name
    outputs: dict[str, Any] = {"arn": _arn(resource_type, str(physical), region),
                               "name": physical, "tagsAll": inputs.get("tags", {})}
    if resource_type == "aws:s3/bucket:Bucket":
        outputs.update(bucket=physical, bucketRegionalDomainName=f"{physical}.s3.mock")
    elif resource_type == "aws:eks/cluster:Cluster":
        outputs.update(
            endpoint=f"https://{physical}.eks.mock",
            certificateAuthority={"data": "bW9jay1jYQ=="},
            identities=[{"oidcs": [{"issuer": f"https://oidc.eks.{region}.mock/id/{physical}"}]}],
            vpcConfig={**inputs.get("vpcConfig", {}), "clusterSecurityGroupId": "sg-cluster"},
            version=inputs.get("version"),
        )
    elif resource_type == "aws:ecr/repository:Repository":
        outputs["repositoryUrl"] = f"{MOCK_ACCOUNT_ID}.dkr.ecr.{region}.mock/{physical}"
    elif resource_type == "aws:kms/key:Key":
        outputs["keyId"] = f"key-{name}"
    elif resource_type == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        outputs["url"] = inputs.get("url", "")
    elif resource_type == "aws:eks/nodeGroup:NodeGroup":
        outputs["nodeGroupName"] = inputs.get("nodeGroupName") or name
    elif resource_type == "aws:ec2/launchTemplate:LaunchTemplate":
        outputs["latestVersion"] = 1
    elif resource_type == "aws:ec2/vpcEndpoint:VpcEndpoint":
        outputs["prefixListId"] = f"pl-{name}"
    elif resource_type == "aws:sqs/queue:Queue":
        outputs["url"] = f"https://sqs.{region}.mock/{MOCK_ACCOUNT_ID}/{physical}"
    elif resource_type == "aws:eks/podIdentityAssociation:PodIdentityAssociation":
        outputs["associationId"] = f"a-{name}"
    elif resource_type == "aws:sns/topic:Topic":
        outputs["arn"] = f"arn:aws:sns:{region}:{MOCK_ACCOUNT_ID}:{physical}"
    return outputs


def _invoke(token: str, args: Mapping[str, Any], region: str) -> dict[str, Any]:
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {"accountId": MOCK_ACCOUNT_ID,
                "arn": f"arn:aws:sts::{MOCK_ACCOUNT_ID}:assumed-role/mock-deployer/session",
                "userId": "MOCK:session", "id": MOCK_ACCOUNT_ID}
    if token == "aws:iam/getSessionContext:getSessionContext":
        arn = str(args.get("arn") or "")
        session = re.fullmatch(r"arn:aws:sts::(\d{12}):assumed-role/([^/]+)/(.+)", arn)
        if not session:
            return {"arn": arn, "issuerArn": arn, "id": arn}
        account, role, name = session.groups()
        return {"arn": arn, "issuerArn": f"arn:aws:iam::{account}:role/{role}",
                "issuerId": "MOCK", "issuerName": role, "sessionName": name, "id": arn}
    if token == "aws:eks/getAddonVersion:getAddonVersion":
        # a version per Kubernetes version, as EKS's default add-on versions are
        kubernetes = args.get("kubernetesVersion")
        return {"addonName": args.get("addonName"), "kubernetesVersion": kubernetes,
                "version": f"v{kubernetes}.0-eksbuild.1", "id": args.get("addonName")}
    if token == "aws:index/getRegion:getRegion":
        return {"name": region, "region": region, "id": region,
                "description": "mock", "endpoint": f"ec2.{region}.mock"}
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        excluded = set(args.get("excludeZoneIds") or ())
        zones = _mock_zones(region)
        zones = [(name, zone_id) for name, zone_id in zones if zone_id not in excluded]
        return {"names": [name for name, _ in zones],
                "zoneIds": [zone_id for _, zone_id in zones], "id": region}
    if token == "aws:ssm/getParameter:getParameter":
        return {"value": "ami-0mock", "name": args.get("name"), "type": "String",
                "id": args.get("name")}
    if token == "aws:ec2/getAmi:getAmi":
        return {"id": "ami-0mock", "imageId": "ami-0mock"}
    if token == "aws:iam/getPolicyDocument:getPolicyDocument":
        return {"json": json.dumps({"Version": "2012-10-17", "Statement": []}), "id": "mock"}
    return {}


# AZ ID codes: a region's area, the initials of its direction words and its number (AWS docs,
# "AZ IDs for your AWS resources")
_DIRECTIONS = {"north": "n", "south": "s", "east": "e", "west": "w", "central": "c",
               "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
               "gov": "g"}


def _mock_zones(region: str) -> list[tuple[str, str]]:
    """(name, ID) of the region's zones as AWS lists them: as many as the region has
    (stacks/regions.py), named <region>a, <region>b..., with IDs of AWS's form (<code>-az1...),
    so that the network's exclusion of zones EKS does not support shows offline."""
    from .stacks.regions import REGIONS

    area, *directions, number = region.split("-")
    code = area + "".join(_DIRECTIONS.get(word, word[:1]) for word in directions) + number
    count = REGIONS[region].availability_zones if region in REGIONS else 3
    return [(f"{region}{chr(ord('a') + index)}", f"{code}-az{index + 1}")
            for index in range(count)]


STACK_REFERENCE = "pulumi:pulumi:StackReference"


class _Recorder:
    """Builds the mock monitor and mocks; collects registrations in order."""

    def __init__(self, region: str,
                 stack_references: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        import pulumi
        from google.protobuf import json_format
        from pulumi.runtime import mocks
        from pulumi_policy.deserialize import deserialize_properties as policy_properties

        recorder = self
        self.region = region
        self.resources: list[GraphResource] = []
        self.stack_outputs: dict[str, Any] = {}
        self.stack_urn: str | None = None

        class Mocks(pulumi.runtime.Mocks):
            def new_resource(self, args: pulumi.runtime.MockResourceArgs):  # type: ignore[override]
                if args.typ == STACK_REFERENCE:  # read, not registered: another stack's outputs
                    name = args.inputs.get("name") or args.resource_id or args.name
                    if name not in (stack_references or {}):
                        raise KeyError(f"no outputs of stack {name!r} were given to the mocks")
                    return name, {"name": name, "outputs": dict(stack_references[name]),
                                  "secretOutputNames": []}
                if not args.custom:
                    return None, {}
                # computed outputs win: some extend an input (an EKS cluster's vpcConfig)
                outputs = {**args.inputs,
                           **_computed_outputs(args.typ, args.name, args.inputs, region)}
                return f"{args.name}-id", outputs

            def call(self, args: pulumi.runtime.MockCallArgs):  # type: ignore[override]
                return _invoke(args.token, args.args, region), []

        class Monitor(mocks.MockMonitor):
            def RegisterResource(self, request):  # type: ignore[no-untyped-def]
                response = super().RegisterResource(request)
                if request.type == "pulumi:pulumi:Stack":
                    recorder.stack_urn = response.urn
                    return response
                # decoded as Pulumi's policy engine decodes them: values unknown before
                # deployment stay as pulumi_policy's sentinels, so rules see what they would
                inputs = policy_properties(json_format.MessageToDict(request.object))
                state = self.resources[response.urn].state if response.urn in self.resources \
                    else {}
                parent = request.parent or None
                if parent == recorder.stack_urn or "::pulumi:pulumi:Stack::" in (parent or ""):
                    parent = None  # top-level resources belong to the stack itself
                recorder.resources.append(GraphResource(
                    urn=response.urn, type=request.type, name=request.name,
                    custom=bool(request.custom), parent=parent,
                    dependencies=tuple(sorted(request.dependencies)), inputs=_plain(inputs),
                    outputs=_plain(state), options=_options(request)))
                return response

        self.mocks = Mocks()
        self.monitor = Monitor(self.mocks)


def _options(request: Any) -> dict[str, Any]:
    """The lifecycle options of a registration that are set (see GraphResource.options)."""
    options: dict[str, Any] = {}
    for name, field_name in (("protect", "protect"), ("retain_on_delete", "retainOnDelete"),
                             ("delete_before_replace", "deleteBeforeReplace")):
        if getattr(request, field_name):
            options[name] = True
    for name, field_name in (("ignore_changes", "ignoreChanges"),
                             ("replace_on_changes", "replaceOnChanges")):
        paths = list(getattr(request, field_name))
        if paths:
            options[name] = paths
    return options


def _plain(value: Any) -> Any:
    """Deserialized properties as plain JSON-like data (unknowns become None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire carries every number as a float
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return None


@contextmanager
def _quiet_pulumi_logs() -> Iterator[None]:
    import logging

    logger = logging.getLogger("pulumi")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# what pulumi.get_organization() returns under the mocks (and with a self-managed backend)
MOCK_ORGANIZATION = "organization"


@contextmanager
def _loaded_objects_frozen() -> Iterator[None]:
    """Keep the objects that exist before a run out of the cyclic garbage collector's scans.

    The Pulumi and provider SDKs leave some 350,000 objects behind once imported, and a mocked
    run allocates thousands of tasks and outputs, so every full collection during the run walked
    them all: half of a run's time. Frozen (:func:`gc.freeze`), they are skipped; afterwards
    they are handed back, unless the caller had frozen objects of its own."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _ensure_event_loop() -> None:
    """Pulumi's runtime takes the thread's current event loop, and asyncio.run() elsewhere in the
    process (a server, a test) leaves none set: give the thread a loop when it has none."""
    import asyncio

    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def run_under_mocks(program: Callable[[], Any], *, project: str = "project",
                    stack: str = "stack", config: Mapping[str, str] | None = None,
                    region: str = DEFAULT_REGION, preview: bool = False,
                    stack_references: Mapping[str, Mapping[str, Any]] | None = None
                    ) -> ResourceGraph:
    """Run `program` (a function that declares resources) under mocks; return its graph.

    `config` maps full keys (``aws:region``, ``<project>:platform``) to strings, JSON for
    objects, as the Pulumi CLI passes them. `stack_references` maps a referenced stack's name
    (``organization/<project>/<stack>``) to its outputs.
    """
    import pulumi
    import pulumi.runtime

    with _RUN_LOCK, _quiet_pulumi_logs(), _loaded_objects_frozen():
        _ensure_event_loop()
        recorder = _Recorder(region, stack_references)
        # a fresh root stack per run: the previous run's would keep its exports
        pulumi.runtime.settings.ROOT.set(None)
        pulumi.runtime.set_all_config({"aws:region": region, **(config or {})}, [])
        pulumi.runtime.set_mocks(recorder.mocks, project=project, stack=stack, preview=preview,
                                 monitor=recorder.monitor, organization=MOCK_ORGANIZATION)
        failure: list[BaseException] = []

        @pulumi.runtime.test
        def _run() -> Any:
            try:
                program()
            except BaseException as error:  # reported after the runtime settles
                failure.append(error)
                return None
            # mocks finish the root stack before the program runs, so exports are never
            # registered: resolve them here instead
            root = pulumi.runtime.settings.get_root_resource()
            exports = getattr(root, "outputs", {}) or {}
            return pulumi.Output.from_input(exports).apply(
                lambda values: recorder.stack_outputs.update(_plain(values)))

        _run()
        if failure:
            raise failure[0]
        # registration order under mocks varies between runs; URN order does not
        resources = sorted(recorder.resources, key=lambda r: r.urn)
        return ResourceGraph(project=project, stack=stack, resources=resources,
                             outputs=recorder.stack_outputs)


def stack_reference_name(project: str, stack: str) -> str:
    """The name a program's StackReference to `project`'s `stack` has under the mocks."""
    return f"{MOCK_ORGANIZATION}/{project}/{stack}"


# what an in-cluster program's objects run on: the base stack's cluster
_RUNS_ON = ("aws:eks/cluster:Cluster",)


def merge_graphs(base: ResourceGraph, inner: ResourceGraph) -> ResourceGraph:
    """One graph of a base stack and the in-cluster stack that reads its outputs: every
    resource of both (their URNs differ by project), the base's outputs.

    The StackReference between them is no dependency Pulumi records; here every in-cluster
    resource that depends on nothing else of its program depends on the base's cluster it
    is installed on (diagrams and rules see what runs where)."""
    runs_on = tuple(r.urn for r in base.of_type(*_RUNS_ON))
    inner_urns = {r.urn for r in inner.resources}
    linked = [dataclasses.replace(r, dependencies=tuple(sorted({*r.dependencies, *runs_on})))
              if r.custom and not inner_urns & set(r.dependencies) else r
              for r in inner.resources]
    return ResourceGraph(project=base.project, stack=base.stack,
                         resources=sorted([*base.resources, *linked], key=lambda r: r.urn),
                         outputs=base.outputs)


def _user_frames(error: BaseException, program: Path) -> list[Any]:
    """The traceback frames inside the user's infra/ folder, outermost first."""
    import traceback

    folder = program.parent.resolve()
    return [frame for frame in traceback.extract_tb(error.__traceback__)
            if Path(frame.filename).resolve().is_relative_to(folder)]


def run_program(program: Path, *, project: str, stack: str, config: Mapping[str, str],
                region: str, stack_references: Mapping[str, Mapping[str, Any]] | None = None
                ) -> ResourceGraph:
    """Run a Pulumi program file (``infra/__main__.py``) under mocks, as `pulumi up` would.

    Raises :class:`ProgramError` naming the file and line in the program when it fails.
    """
    program = program.resolve()
    added = str(program.parent)
    sys.path.insert(0, added)
    try:
        return run_under_mocks(lambda: runpy.run_path(str(program), run_name="__main__"),
                               project=project, stack=stack, config=config, region=region,
                               stack_references=stack_references)
    except Exception as error:
        import traceback

        from .packaging import missing_library

        if isinstance(error, ModuleNotFoundError) and missing_library(error):
            raise  # not the program's fault: this installation lacks Pulumi (the CLI says so)
        frames = _user_frames(error, program)
        location = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None
        raise ProgramError(error, location, "".join(traceback.format_list(frames))) from error
    finally:
        if added in sys.path:
            sys.path.remove(added)
