"""Pulumi CrossGuard pack: mlscaffold's security rules.

    pulumi preview --policy-pack <this folder> --policy-pack-config <config.json>

The rules live in mlscaffold.policies; constructing the pack starts the policy server.
"""

from pulumi_policy import PolicyPack

from mlscaffold.policies.crossguard import pack_policies

PolicyPack(name="mlscaffold-security", policies=pack_policies("security"))
