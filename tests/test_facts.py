"""One source for every fact: each table is read by all of its consumers, and they agree.

Each test runs every consumer of one fact on every entry of its table (and on values outside
it), so a consumer that grows its own copy of the fact fails here as soon as the two differ.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import yaml

from mlscaffold import catalog
from mlscaffold.errors import SpecError
from mlscaffold.policies.cost.prices import prices
from mlscaffold.spec import validate_spec
from mlscaffold.stacks.config import KUBERNETES_VERSIONS, StackConfigError, platform_config
from mlscaffold.stacks.regions import DEFAULT_REGION, REGIONS, model_monitor_image_uri

from .conftest import BLUEPRINT, blueprint_questions

REPO = Path(__file__).resolve().parents[1]
# the product's sources (not tests, docs or examples): where a second copy of a fact would live
SOURCES = ("scaffolder", "stacks", "policies", "templates", "blueprints")

# a region code an AWS region could have but mlscaffold does not know, and a real region whose
# facts (price multiplier, Model Monitor image) mlscaffold lacks
UNKNOWN_REGIONS = ("eu-west-99", "il-central-1", "US-EAST-1", "")


def _source_files(*suffixes: str) -> list[Path]:
    return sorted(path for top in SOURCES for path in (REPO / top).rglob("*")
                  if path.is_file() and "__pycache__" not in path.parts
                  and (not suffixes or path.name.endswith(suffixes)))


def _spec_values(**overrides: object) -> dict[str, object]:
    return validate_spec({"name": "demo", **overrides}).model_dump(mode="json")


# ---------------------------------------------------------------- regions


@pytest.mark.parametrize("region", list(REGIONS))
def test_every_known_region_is_usable_by_every_consumer(region: str) -> None:
    facts = REGIONS[region]
    assert validate_spec({"name": "demo", "region": region}).region == region
    assert platform_config(_spec_values(region=region), "dev").region == region
    assert prices().region_multiplier(region) == (facts.price_multiplier, None)
    assert model_monitor_image_uri(region) == (
        f"{facts.model_monitor_account}.dkr.ecr.{region}.amazonaws.com/"
        "sagemaker-model-monitor-analyzer")
    assert re.fullmatch(r"\d{12}", facts.model_monitor_account)


@pytest.mark.parametrize("region", UNKNOWN_REGIONS)
def test_an_unknown_region_is_refused_by_every_consumer_naming_the_known_ones(
        region: str) -> None:
    known = ", ".join(REGIONS)
    with pytest.raises(SpecError) as caught:
        validate_spec({"name": "demo", "region": region})
    assert caught.value.field == "region"
    offer = " (did you mean 'us-east-1'?)" if region == "US-EAST-1" else ""
    assert str(caught.value) == (f"{region!r} is not an AWS region mlscaffold knows{offer}; use "
                                 f"one of: {known}")
    spec = _spec_values()
    with pytest.raises(StackConfigError, match=re.escape(f"use one of: {known}")):
        platform_config({**spec, "region": region}, "dev")
    with pytest.raises(ValueError, match=re.escape(f"use one of: {known}")):
        model_monitor_image_uri(region)
    # the estimator (also the budget rule under a real `pulumi preview`) prices a region it does
    # not know with the default multiplier and says so, rather than failing a policy run
    multiplier, note = prices().region_multiplier(region)
    assert multiplier == prices().regions.default_multiplier and note is not None


def test_the_defaults_and_the_price_table_base_are_known_regions() -> None:
    assert catalog.SPEC_DEFAULTS["region"] == DEFAULT_REGION in REGIONS
    assert REGIONS[prices().base_region].price_multiplier == 1.0
    assert set(prices().regions.multipliers) == set(REGIONS)
    from mlscaffold.policies.registry import rules_of

    budget = next(rule for rule in rules_of("cost") if rule.name == "monthly-budget")
    assert budget.defaults()["region"] == DEFAULT_REGION


def test_the_blueprint_offers_the_known_regions() -> None:
    question = blueprint_questions()["region"]
    assert question["choices"] == list(REGIONS)
    assert question["default"] == DEFAULT_REGION


def test_no_other_source_holds_a_table_of_regions() -> None:
    """A file naming two or more region codes keeps a region table of its own."""
    code = re.compile(r"\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn)-(?:gov-)?(?:north|south|east|west|"
                      r"central|northeast|southeast|northwest|southwest)-\d\b")
    allowed = {REPO / "stacks" / "regions.py", BLUEPRINT / "copier.yml"}
    tables = {path.relative_to(REPO).as_posix(): sorted(set(codes))
              for path in _source_files(".py", ".json", ".yml", ".yaml", ".jinja", ".j2")
              if path not in allowed
              and len(set(codes := code.findall(path.read_text(errors="ignore")))) > 1}
    assert tables == {}


# ---------------------------------------------------------------- which environment is production

ENVIRONMENT_LISTS = [["dev", "staging", "prod"], ["dev", "main"], ["dev", "prod"], ["main"],
                     ["prod"], ["dev", "qa"], ["sandbox", "live", "dr"], ["dev", "uat", "prd"],
                     ["a", "b", "c", "d"]]


@pytest.mark.parametrize("environments", ENVIRONMENT_LISTS, ids=",".join)
def test_ci_deploys_as_production_what_the_stacks_size_as_production(environments,
                                                                    tmp_path) -> None:
    from mlscaffold.ci import deploy_stages, render_pipeline
    from mlscaffold.project import blueprint_source, render_into

    spec = validate_spec({"name": "demo", "environments": environments})
    render_into(tmp_path / "demo", spec, blueprint_source(None))
    sized = {env: platform_config(spec.model_dump(mode="json"), env).production
             for env in environments}
    assert {stage.name: stage.production for stage in deploy_stages(environments)} == sized
    # the stack configs `new` writes are sized the same
    headers = {path.stem.removeprefix("Pulumi."): path.read_text().splitlines()[0]
               for path in (tmp_path / "demo" / "infra").glob("Pulumi.*.yaml")}
    assert {env: "(prod sizing)" in header for env, header in headers.items()} == sized
    # and the rendered pipelines put exactly those behind approval and promote to production
    github = yaml.safe_load(render_pipeline(spec, "github")[Path(".github/workflows/ci.yml")])
    assert {env: any("STAGE=production" in str(step.get("run", ""))
                     for step in github["jobs"][f"deploy-{env}"]["steps"])
            for env in environments} == sized
    gitlab = yaml.safe_load(render_pipeline(spec, "gitlab")[Path(".gitlab-ci.yml")])
    assert {env: gitlab[f"deploy:{env}"]["rules"][0].get("when") == "manual"
            for env in environments} == sized
    # several environments always have a production one
    assert any(sized.values()) or len(environments) == 1


# ---------------------------------------------------------------- ID-like columns

# column name -> whether it names an identifier. Case matters only where it must: words that
# end in "id" are not identifiers, whatever their case
ID_NAMES = {
    "id": True, "ID": True, "Id": True, "customer_id": True, "CUSTOMER_ID": True,
    "customer-id": True, "customer id": True, "customer.id": True, "customerId": True,
    "customerID": True, "order_uuid": True, "orderUuid": True, "user_guid": True,
    "userGUID": True, "row2Id": True,
    "paid": False, "valid": False, "Paid": False, "VALID": False, "android": False,
    "fluid": False, "squid": False, "idle": False, "identity": False, "ideal": False,
    "id_card": False, "hidden": False, "grid": False, "void": False, "rapid": False,
}


@pytest.mark.parametrize(("name", "id_like"), ID_NAMES.items())
def test_the_lifecycle_and_the_feature_store_agree_on_id_like_columns(
        tmp_path: Path, name: str, id_like: bool) -> None:
    import pandas as pd

    from mlscaffold.lifecycle.schema import ID_LIKE, infer_schema
    from mlscaffold.stacks.feature_schema import feature_definitions_from_csv

    rows = 12  # few enough rows that only the name can make a column an identifier
    frame = pd.DataFrame({"code": [f"c{i}" for i in range(rows)],
                          name: [f"v{i}" for i in range(rows)],
                          "amount": [float(i % 3) for i in range(rows)],
                          "label": [i % 2 for i in range(rows)]})
    # the lifecycle drops an identifier from the model's features
    kinds = {c.name: c.kind for c in infer_schema(frame, "label").columns}
    assert (kinds[name] == ID_LIKE) is id_like
    # the feature store takes an ID-like column as the record identifier, else the first
    # unique text column ("code")
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    schema = feature_definitions_from_csv(path, "label")
    identifier = next(f for f in schema.features if f.name == schema.record_identifier)
    assert identifier.column == (name if id_like else "code")


def test_no_other_source_keeps_an_id_name_rule() -> None:
    holders = [path.relative_to(REPO).as_posix() for path in _source_files(".py")
               if path != REPO / "stacks" / "columns.py"
               and re.search(r"(Id\||\(id\||_id\$|Id\$)", path.read_text(errors="ignore"))]
    assert holders == []


# ---------------------------------------------------------------- the model's S3 key


def test_the_model_key_is_made_once_and_every_consumer_takes_it(tmp_path: Path) -> None:
    from fnmatch import fnmatch

    from mlscaffold.model import ModelVersion, model_digest
    from mlscaffold.stacks.model_keys import MODELS_PREFIX, model_key
    from mlscaffold.stacks.serving import deployable_model_key

    folder = tmp_path / "v1"
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    digest = model_digest(folder)
    key = ModelVersion("staging", 1, folder, digest).key  # what `mlscaffold model upload` puts
    assert key == model_key(digest)
    # the stack config takes it, serving deploys it and its roles may read it
    config = platform_config(_spec_values(), "dev", {"serving": {"model_key": key}})
    assert deployable_model_key(config.serving, "dev") == key
    assert fnmatch(key, f"{MODELS_PREFIX}/*")


def test_the_makefile_leaves_the_registry_and_the_key_to_mlscaffold() -> None:
    """`make deploy` asks `mlscaffold model served` for the key (the stack's model registry),
    `make upload-model` asks `mlscaffold model upload`; the Makefile neither reads
    models/registry.json nor builds a key itself."""
    makefile = (BLUEPRINT / "template" / "Makefile.jinja").read_text()
    # the lines make runs or assigns: not comments, nor the `## help` of a target
    code = [line.split(" ## ")[0] for line in makefile.splitlines()
            if not line.lstrip().startswith("#")]
    key_or_registry = re.compile(r"registry\.json|model\.tar\.gz|sha256|models/")
    assert [line for line in code if key_or_registry.search(line)] == []
    assert "UPLOAD_MODEL = $(MLSCAFFOLD) model upload --stack $(STACK) --stage $(STAGE)" in code
    assert "SERVED_MODEL = $(MLSCAFFOLD) model served --stack $(STACK) --stage $(STAGE)" in code
    assert "REGISTER_MODEL = $(APP) promote $(EXP) --to $(STAGE) --stack $(STACK)" in code


# ---------------------------------------------------------------- the version


def test_every_file_that_must_hold_the_version_holds_the_installed_one() -> None:
    """mlscaffold's version is ``mlscaffold.__version__``. Files read by tools that cannot ask
    Python (a plain `copier copy`, Pulumi installing a policy pack) hold it literally: here they
    are, and each must equal it. Everything rendered takes it from the spec's answers."""
    from mlscaffold import DISTRIBUTION, __version__
    from mlscaffold.packaging import pinned
    from mlscaffold.policies import PACKS, pack_directory

    fix = "run `make version`"
    questions = blueprint_questions()
    assert questions["mlscaffold_version"]["default"] == __version__, fix
    assert questions["mlscaffold_distribution"]["default"] == DISTRIBUTION
    for pack in PACKS:
        folder = pack_directory(pack)
        manifest = yaml.safe_load((folder / "PulumiPolicy.yaml").read_text())
        assert manifest["version"] == __version__, fix
        assert pinned() in (folder / "requirements.txt").read_text().splitlines(), fix
    assert validate_spec({"name": "demo"}).mlscaffold_version == __version__


def test_no_other_source_spells_the_version() -> None:
    from mlscaffold import __version__

    literal = re.compile(rf"(?<![\d.]){re.escape(__version__)}(?![\d.])")
    allowed = {REPO / "scaffolder" / "__init__.py", BLUEPRINT / "copier.yml",
               *(REPO / "policies" / "packs" / pack / name for pack in ("security", "cost")
                 for name in ("PulumiPolicy.yaml", "requirements.txt"))}
    holders = [path.relative_to(REPO).as_posix() for path in _source_files()
               if path not in allowed and literal.search(path.read_text(errors="ignore"))]
    holders += [path.relative_to(REPO).as_posix() for path in (REPO / "docs").glob("*.md")
                if literal.search(path.read_text())]
    assert holders == []


# ---------------------------------------------------------------- tasks, metrics, directions


def test_the_catalog_is_the_one_table_of_tasks_metrics_and_directions() -> None:
    from typing import get_args

    from mlscaffold.lifecycle.metrics import METRICS, TASKS, metrics_for

    assert list(get_args(catalog.TaskName)) == list(catalog.TASKS) == list(TASKS)
    named = {metric for info in catalog.TASKS.values() for metric in info.metrics}
    assert set(METRICS) == named  # the runtime computes exactly the catalog's metrics
    assert catalog.LOWER_IS_BETTER.issubset(named)
    for task, info in catalog.TASKS.items():
        assert info.default_metric in info.metrics
        assert [m.name for m in metrics_for(task)] == [m for m in METRICS if m in info.metrics]
        for name in info.metrics:
            assert METRICS[name].higher_is_better is (name not in info.lower_is_better)
            assert task in METRICS[name].tasks


@pytest.mark.parametrize("task", list(catalog.TASKS))
def test_the_blueprint_and_the_spec_default_the_metric_alike(task: str) -> None:
    """A plain `copier copy` (copier.yml's Jinja defaults) gets the spec's per-task defaults."""
    import jinja2

    questions = blueprint_questions()
    info = catalog.TASKS[task]
    spec = validate_spec({"name": "demo", "task": task})
    delimiters = {key: value for key, value in questions["_envops"].items()
                  if key.endswith("_string")}
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, **delimiters)
    metric = environment.from_string(questions["metric"]["default"]).render(task=task)
    threshold = environment.from_string(questions["metric_threshold"]["default"]).render(
        task=task)
    assert metric == spec.metric == info.default_metric
    assert float(threshold) == spec.metric_threshold == info.default_threshold
    assert questions["task"]["choices"] == list(catalog.TASKS)


def test_the_getting_started_table_shows_the_catalog_defaults() -> None:
    shown = ", ".join(f"`{info.default_metric}` {info.default_threshold:g}"
                      for info in catalog.TASKS.values())
    assert f"by task ({shown})" in (REPO / "docs" / "getting-started.md").read_text()


# ---------------------------------------------------------------- the spec's defaults


def _shown(value: object) -> str:
    return ",".join(value) if isinstance(value, tuple | list) else str(value)


def test_project_spec_fields_default_to_the_catalog_table() -> None:
    from mlscaffold.spec import ProjectSpec

    for field, value in catalog.SPEC_DEFAULTS.items():
        default = ProjectSpec.model_fields[field].get_default(call_default_factory=True)
        assert _shown(default) == _shown(value), field
    spec = validate_spec({"name": "demo"})
    assert {f: _shown(getattr(spec, f)) for f in catalog.SPEC_DEFAULTS} == {
        f: _shown(v) for f, v in catalog.SPEC_DEFAULTS.items()}
    # a plain `copier copy` answers the same
    questions = blueprint_questions()
    for field, value in catalog.SPEC_DEFAULTS.items():
        assert _shown(questions[field]["default"]) == _shown(value), field


@pytest.mark.parametrize("command", ["new", "ci"])
def test_the_cli_shows_the_spec_defaults(command: str) -> None:
    """Every spec option of `new` and `ci` says `[default: X]`, X being ProjectSpec's default."""
    import click

    from mlscaffold.cli import _OPTION_FOR_FIELD, cli
    from mlscaffold.spec import ProjectSpec

    shown = 0
    for param in cli.commands[command].params:
        field = next((f for f, option in _OPTION_FOR_FIELD.items() if option in param.opts),
                     None)
        if not isinstance(param, click.Option) or field not in catalog.SPEC_DEFAULTS:
            continue
        default = ProjectSpec.model_fields[field].get_default(call_default_factory=True)
        assert (param.help or "").endswith(f"[default: {_shown(default)}]."), param.opts
        shown += 1
    spec_options = {"new": len(catalog.SPEC_DEFAULTS), "ci": 5}  # ci: task..environments
    assert shown == spec_options[command]


def test_the_getting_started_table_shows_the_spec_defaults() -> None:
    text = (REPO / "docs" / "getting-started.md").read_text()
    rows = {line.split("|")[1].strip(): line.split("|")[3].strip().strip("`")
            for line in text.splitlines() if line.startswith("| `--")}
    for field, value in catalog.SPEC_DEFAULTS.items():
        if field in ("owner", "cost_center"):
            continue
        assert rows[f"`--{field.replace('_', '-')}`"] == _shown(value), field
    d = catalog.SPEC_DEFAULTS
    assert rows["`--owner`, `--cost-center`"] == f"{d['owner']}, {d['cost_center']}"


# ---------------------------------------------------------------- Kubernetes versions


def test_every_consumer_of_the_kubernetes_versions_reads_the_one_table() -> None:
    from mlscaffold.policies.registry import rules_of
    from mlscaffold.stacks import config as stack_config
    from mlscaffold.stacks.monitoring import CLOUDWATCH_OBSERVABILITY_VERSIONS

    table = stack_config.KUBERNETES_VERSIONS
    assert stack_config.UNPINNED_KUBERNETES_VERSION in table
    assert stack_config.default_kubernetes_version() in table
    assert tuple(table) == stack_config.SUPPORTED_KUBERNETES_VERSIONS
    supported = next(r for r in rules_of("security") if r.name == "eks-supported-version")
    assert supported.defaults()["supported_versions"] == list(table)
    pinned = {v: k.cloudwatch_observability for v, k in table.items()}
    assert pinned == CLOUDWATCH_OBSERVABILITY_VERSIONS
    spec = _spec_values(serving="kserve")
    for version, facts in table.items():
        config = platform_config(spec, "dev", {"cluster": {"kubernetes_version": version}})
        assert config.cluster.kubernetes_version == version
        assert stack_config.EKS_STANDARD_SUPPORT_ENDS.get(version) == facts.standard_support_ends
        assert stack_config.KARPENTER_MINIMUM_FOR_KUBERNETES[version] == facts.karpenter_minimum
    for version in ("1.31", "1.37"):
        with pytest.raises(StackConfigError, match=re.escape(", ".join(table))):
            platform_config(spec, "dev", {"cluster": {"kubernetes_version": version}})


@pytest.mark.parametrize("version", list(KUBERNETES_VERSIONS))
def test_the_cost_estimate_prices_extended_support_from_the_table(version: str) -> None:
    from mlscaffold.policies.cost.estimate import estimate

    cluster = ("aws:eks/cluster:Cluster", "eks", {"version": version})
    day = date(2026, 12, 5)  # support windows are judged on the day the estimate is made
    line = estimate([cluster], DEFAULT_REGION, on=day).lines[0]
    ends = KUBERNETES_VERSIONS[version].standard_support_ends
    extended = ends <= day
    rate = prices().service("eks_cluster_extended_support_hour" if extended
                            else "eks_cluster_hour")
    assert line.monthly_usd == pytest.approx(rate * prices().hours_per_month)


def test_no_other_source_lists_kubernetes_versions() -> None:
    version = re.compile(r"[\"']1\.[23]\d[\"']")
    holders = [path.relative_to(REPO).as_posix()
               for path in _source_files(".py", ".json", ".yml", ".yaml", ".jinja", ".j2")
               if path != REPO / "stacks" / "config.py"
               and version.search(path.read_text(errors="ignore"))]
    assert holders == []


# ---------------------------------------------------------------- instance types


def test_the_price_table_prices_exactly_the_instance_tables() -> None:
    from mlscaffold.stacks.instances import EC2_INSTANCES, SAGEMAKER_INSTANCES

    # also validated when loaded; a type without a sourced price is declared unpriced
    unpriced = prices().unpriced
    assert set(prices().ec2_hourly) | set(unpriced.ec2_hourly) == set(EC2_INSTANCES)
    assert set(prices().sagemaker_hosting_hourly) | set(unpriced.sagemaker_hosting_hourly) == \
        set(SAGEMAKER_INSTANCES)


def test_every_instance_type_a_source_names_is_in_the_instance_tables() -> None:
    """Defaults, allow-lists and profiles name types; the facts about a type (vCPUs, GPUs,
    prices) are kept once, in mlscaffold.stacks.instances (and the price table it checks)."""
    from mlscaffold.stacks.instances import EC2_INSTANCES, SAGEMAKER_INSTANCES

    known = {*EC2_INSTANCES, *SAGEMAKER_INSTANCES, *prices().sagemaker_processing_hourly}
    pattern = re.compile(r"[\"'](?:ml\.)?[a-z]+\d[a-z]*\.(?:nano|micro|small|medium|large|"
                         r"\d*xlarge|metal)[\"']")
    unknown = {f"{path.relative_to(REPO).as_posix()}: {name}"
               for path in _source_files(".py", ".jinja", ".j2", ".yml", ".yaml")
               if path.parent.name != "tests"
               for name in (m.strip("\"'") for m in pattern.findall(path.read_text()))
               if name not in known}
    assert unknown == set()


# ---------------------------------------------------------------- environments per project


def test_the_blueprint_has_a_stack_config_slot_per_possible_environment(tmp_path) -> None:
    from mlscaffold.project import blueprint_source, render_into

    slots = [p for p in (BLUEPRINT / "template" / "infra").iterdir() if "Pulumi.[[" in p.name]
    assert len(slots) == catalog.ENVIRONMENT_MAX_COUNT
    names = [f"e{i}" for i in range(catalog.ENVIRONMENT_MAX_COUNT)]
    render_into(tmp_path / "p", validate_spec({"name": "p", "environments": names}),
                blueprint_source(None))
    assert sorted(p.name for p in (tmp_path / "p" / "infra").glob("Pulumi.*.yaml")) == sorted(
        f"Pulumi.{name}.yaml" for name in names)
    with pytest.raises(SpecError, match=f"at most {catalog.ENVIRONMENT_MAX_COUNT}"):
        validate_spec({"name": "p", "environments": [*names, "one-more"]})
