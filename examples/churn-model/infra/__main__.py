"""Pulumi program of this project's ML platform: one stack per environment.

`pulumi up` deploys it; `mlscaffold preview --stack ENV` runs it offline under Pulumi's mocks.
The project's spec is ../mlscaffold.yaml (validated as `mlscaffold check` validates it); each
stack's settings are in Pulumi.<stack>.yaml (key `platform`), validated before any resource is
created.
"""

from pathlib import Path

import pulumi
from mlscaffold.stacks import MlPlatform, MlPlatformArgs, platform_config, project_spec

PROJECT = Path(__file__).resolve().parent.parent

spec = project_spec(PROJECT)
config = platform_config(spec, pulumi.get_stack(), pulumi.Config().get_object("platform"),
                         config_keys=pulumi.runtime.get_config_env())
platform = MlPlatform(config.prefix, MlPlatformArgs(config=config,
                                                    dataset=PROJECT / "datasets" / "train.csv"))

for name, value in platform.exports().items():
    pulumi.export(name, value)
