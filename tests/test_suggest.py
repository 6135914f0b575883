"""A mistyped name is refused with the nearest known one, when one is clearly nearest."""

from __future__ import annotations

import pytest

from mlscaffold.errors import SpecError
from mlscaffold.lifecycle.errors import ConfigError, NotFoundError
from mlscaffold.policies.config import PolicyConfigError, load_policy_file
from mlscaffold.spec import validate_spec
from mlscaffold.stacks.config import PlatformConfig, StackConfigError, platform_config
from mlscaffold.stacks.regions import REGIONS
from mlscaffold.suggest import did_you_mean, model_at, nearest


@pytest.mark.parametrize(("typed", "choices", "offered"), [
    ("acuracy", ["accuracy", "f1", "roc_auc"], "accuracy"),
    ("lable", ["name", "label", "task"], "label"),
    ("prodution", ["staging", "production", "prod"], "production"),
    ("m5.large", ["ml.m5.large", "ml.g5.xlarge"], "ml.m5.large"),
    ("US-EAST-1", list(REGIONS), "us-east-1"),  # letter case aside
    ("useast-1", list(REGIONS), "us-east-1"),
    ("f2", ["accuracy", "f1", "roc_auc"], None),  # not close enough
    ("plat", ["platform"], None),
    ("eu-west-99", list(REGIONS), None),  # eu-west-1, -2 and -3 equally close: no guess
    ("mars-east-1", list(REGIONS), None),  # us-east-1 and sa-east-1 alike
    ("anything", [], None),
])
def test_the_nearest_name_is_offered_only_when_it_is_close_and_alone(typed, choices, offered):
    assert nearest(typed, choices) == offered
    assert did_you_mean(typed, choices) == (f" (did you mean {offered!r}?)" if offered else "")


def test_the_model_holding_a_key_is_found_through_lists_and_optionals():
    assert model_at(PlatformConfig, ()) is PlatformConfig
    assert "instance_families" in model_at(PlatformConfig, ("cluster", "gpu_pools", 0)).model_fields
    assert "name" in model_at(PlatformConfig, ("cluster", "cpu_pool")).model_fields  # X | None
    assert model_at(PlatformConfig, ("no_such_section",)) is None


def _spec(**values):
    return {"name": "demo", **values}


def test_a_mistyped_spec_key_offers_the_key():
    with pytest.raises(SpecError, match=r"unknown key 'lable' \(did you mean 'label'\?\); "
                                        r"valid keys are: version, "):
        validate_spec(_spec(lable="y"))


def test_a_mistyped_stack_setting_offers_the_setting_of_its_section():
    spec = validate_spec(_spec()).model_dump(mode="json")
    with pytest.raises(StackConfigError) as caught:
        platform_config(spec, "dev", {"cluster": {"system_node_group": {
            "instance_type": ["m6i.large"]}}})
    assert caught.value.key == "platform.cluster.system_node_group.instance_type"
    assert "(did you mean 'instance_types'?); valid keys are: " in str(caught.value)
    with pytest.raises(StackConfigError, match=r"'m6i\.larg' \(did you mean 'm6i\.large'\?\)"):
        platform_config(spec, "dev", {"cluster": {"system_node_group": {
            "instance_types": ["m6i.larg"]}}})


def test_a_mistyped_policy_file_key_offers_the_key(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\nrulse: {}\n")
    with pytest.raises(PolicyConfigError, match=r"unknown key 'rulse' \(did you mean 'rules'\?\)"):
        load_policy_file(path)


def test_a_mistyped_metric_offers_the_metric():
    from mlscaffold.lifecycle.metrics import get_metric

    with pytest.raises(ConfigError, match=r"unknown metric 'acuracy' \(did you mean "
                                          r"'accuracy'\?\); metrics for binary-classification: "):
        get_metric("acuracy", "binary-classification")


def test_an_experiment_is_offered_only_by_its_number(tmp_path):
    from mlscaffold.lifecycle.experiments import unknown_experiment

    known = [{"id": "exp-001"}, {"id": "exp-002"}]
    assert "(did you mean 'exp-002'?)" in str(unknown_experiment("exp-2", known))
    assert "(did you mean 'exp-001'?)" in str(unknown_experiment("1", known))
    assert "did you mean" not in str(unknown_experiment("exp-123", known))  # not a typo
    assert isinstance(unknown_experiment("exp-9", known), NotFoundError)


def test_a_model_named_by_a_number_is_looked_up_as_an_experiment(tmp_path):
    from mlscaffold.lifecycle.model import resolve_model_dir

    with pytest.raises(NotFoundError, match=r"^unknown experiment 'exp-1'; run `mlscaffold list`"):
        resolve_model_dir(tmp_path, "exp-1")  # no experiments yet: nothing to offer
    with pytest.raises(NotFoundError, match=r"unknown model 'prodution' \(did you mean "
                                            r"'production'\?\): use production"):
        resolve_model_dir(tmp_path, "prodution")


def test_a_mistyped_stack_offers_the_environment(tmp_path):
    from mlscaffold.checks import resolve_stacks
    from mlscaffold.errors import UsageError
    from mlscaffold.infra import require_environment
    from mlscaffold.stacks.config import environment_profile

    spec = validate_spec(_spec())
    with pytest.raises(UsageError) as caught:
        resolve_stacks(spec, "prd")
    assert str(caught.value) == ("--stack 'prd' is not an environment of the project (did you "
                                 "mean 'prod'?); use one of: dev, staging, prod, or all")
    with pytest.raises(UsageError, match=r"of .*mlscaffold\.yaml \(did you mean 'staging'\?\)"):
        require_environment(spec, "stagin", tmp_path)
    with pytest.raises(UsageError, match=r"^--stack 'qa' is not an environment of the "
                                         r"project; use one of: dev, staging, prod$"):
        require_environment(spec, "qa")  # nothing close: the hint lists them
    with pytest.raises(StackConfigError, match=r"\(did you mean 'dev'\?\); select one"):
        environment_profile("deev", spec.environments)


def test_a_mistyped_data_key_offers_the_blueprints_own_question(tmp_path):
    from mlscaffold.errors import UsageError
    from mlscaffold.project import check_data

    (tmp_path / "copier.yml").write_text("team_email:\n  type: str\nname:\n  type: str\n")
    with pytest.raises(UsageError) as caught:
        check_data(str(tmp_path), {"team_emial": "a@b.c"})
    assert str(caught.value) == ("--data team_emial: the blueprint asks no question "
                                 "'team_emial' (did you mean 'team_email'?); its own questions "
                                 "are: team_email")


def test_an_unexpected_input_column_close_to_a_missing_one_is_named_as_its_typo():
    from mlscaffold.lifecycle.model import SchemaMismatch

    error = SchemaMismatch(["tenure_months", "plan"], ["tenur_months", "notes"])
    assert str(error) == ("input does not match the model's schema: missing column(s): "
                          "tenure_months, plan; unexpected column(s): tenur_months (did you mean "
                          "'tenure_months'?), notes")
