"""Pulumi program of this project's ML platform.

It reads the project's spec (../mlscaffold.yaml) and exports what every stack shares.
Resources come with mlscaffold's stacks; until then `pulumi up` creates none.
"""

from pathlib import Path

import pulumi
import yaml

spec = yaml.safe_load((Path(__file__).resolve().parent.parent / "mlscaffold.yaml").read_text())
environment = pulumi.get_stack()
if environment not in spec["environments"]:
    raise ValueError(
        f"stack {environment!r} is not an environment of mlscaffold.yaml "
        f"({', '.join(spec['environments'])}); run `pulumi stack select` with one of them"
    )

pulumi.export("project", spec["name"])
pulumi.export("environment", environment)
pulumi.export("region", spec["region"])
pulumi.export("tags", {"project": spec["name"], "env": environment, "owner": spec["owner"],
                       "cost-center": spec["cost_center"]})
