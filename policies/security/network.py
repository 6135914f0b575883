"""Network security: no security group lets the internet in, except HTTPS to load balancers.

Ingress is read from a security group's inline ``ingress`` (``SecurityGroup``,
``DefaultSecurityGroup``) and from standalone rules (``aws:vpc`` ``SecurityGroupIngressRule``,
``aws:ec2`` ``SecurityGroupRule`` of type ingress). A rule open to the internet has a /0 CIDR
(``0.0.0.0/0``, ``::/0``).

A load balancer's security group may open the ports in ``load_balancer_ports`` (443) over TCP
to the internet. The policy recognises it from the resource itself, as standalone rules
reference their group by an id unknown before deployment:

* the tag ``mlscaffold.io/purpose: load-balancer`` (security groups, ingress rules), or
* its Pulumi resource name or ``name`` input, split on ``-``, ``_`` and ``.``, containing one
  of the words in ``load_balancer_name_words`` (``lb``, ``alb``, ``nlb``, ``elb``): ``web-alb``
  and ``ingress-lb-sg`` are load balancers', ``totalbalance`` is not. ``SecurityGroupRule``
  has no tags: name it so.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..props import items_of
from ..rule import Subject, rule, violation

__all__ = ["LOAD_BALANCER_TAG"]

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"

#: the tag (key, value) marking a load balancer's security group or ingress rule
LOAD_BALANCER_TAG = ("mlscaffold.io/purpose", "load-balancer")
_WORDS = re.compile(r"[-_.]+")
_ALL = {"-1", "all"}
_TCP = {"tcp", "6"}


@dataclass(frozen=True)
class _Ingress:
    """One ingress permission: where it is in the props, protocol, ports, source CIDRs."""

    path: str
    cidr_key: str
    protocol: str
    from_port: int
    to_port: int
    cidrs: tuple[str, ...]

    def ports(self) -> str:
        if self.protocol in _ALL:
            return "all traffic"
        name = "tcp" if self.protocol in _TCP else self.protocol
        if self.from_port == self.to_port:
            return f"{name} {self.from_port}"
        return f"{name} {self.from_port}-{self.to_port}"


def _port(value: Any) -> int:
    return int(float(value)) if value is not None else 0


def _ingress(path: str, key: str, protocol: Any, props: Mapping[str, Any],
             cidrs: Sequence[Any]) -> _Ingress:
    return _Ingress(path, key, str(protocol).lower(), _port(props.get("fromPort")),
                    _port(props.get("toPort")), tuple(str(c) for c in cidrs))


def _inline(props: Mapping[str, Any]) -> Iterator[_Ingress]:
    for index, entry in enumerate(items_of(props.get("ingress"))):
        for key in ("cidrBlocks", "ipv6CidrBlocks"):
            yield _ingress(f"ingress[{index}].{key}", key, entry.get("protocol", "-1"), entry,
                           items_of(entry.get(key)))


def _standalone(subject: Subject) -> Iterator[_Ingress]:
    props = subject.props
    if subject.type == INGRESS_RULE:
        for key in ("cidrIpv4", "cidrIpv6"):
            if props.get(key):
                yield _ingress(key, key, props.get("ipProtocol", "-1"), props, [props[key]])
    elif props.get("type") == "ingress":
        for key in ("cidrBlocks", "ipv6CidrBlocks"):
            yield _ingress(key, key, props.get("protocol", "-1"), props, items_of(props.get(key)))


def _open_to_world(cidr: Any) -> bool:
    try:
        return ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0
    except ValueError:
        return False


def _load_balancer(subject: Subject, words: Sequence[str]) -> bool:
    tags = subject.props.get("tags")
    key, value = LOAD_BALANCER_TAG
    if isinstance(tags, Mapping) and tags.get(key) == value:
        return True
    names = [subject.name, subject.props.get("name") or ""]
    return any(word in _WORDS.split(str(n).lower()) for n in names for word in words)


def _allowed(ingress: _Ingress, config: Mapping[str, Any]) -> bool:
    ports = {int(p) for p in config["load_balancer_ports"]}
    return (ingress.protocol in _TCP and ingress.from_port == ingress.to_port
            and ingress.from_port in ports)


@rule("sg-no-public-ingress", pack="security", severity="high",
      resource_types=[SECURITY_GROUP, DEFAULT_SECURITY_GROUP, INGRESS_RULE, SECURITY_GROUP_RULE],
      description="Security groups admit no traffic from 0.0.0.0/0 or ::/0, except HTTPS to "
                  "load balancers' groups.",
      config={
          "load_balancer_name_words": {
              "type": "array", "items": {"type": "string", "minLength": 1},
              "default": ["lb", "alb", "nlb", "elb"],
              "description": "A security group (or rule) whose name has one of these words, "
                             "split on - _ and ., belongs to a load balancer."},
          "load_balancer_ports": {
              "type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535},
              "default": [443],
              "description": "TCP ports a load balancer's group may open to the internet."},
      })
def sg_no_public_ingress(subject: Subject, config: Mapping[str, Any]) -> Iterator[str]:
    load_balancer = _load_balancer(subject, config["load_balancer_name_words"])
    ingress = _standalone(subject) if subject.type in (INGRESS_RULE, SECURITY_GROUP_RULE) \
        else _inline(subject.props)
    ports = ", ".join(f"tcp {p}" for p in config["load_balancer_ports"])
    for entry in ingress:
        if load_balancer and _allowed(entry, config):
            continue
        for cidr in entry.cidrs:
            if _open_to_world(cidr):
                yield violation(
                    subject, entry.path, f"admits {cidr} on {entry.ports()}",
                    f"restrict {entry.cidr_key} to known ranges or a source security group; "
                    f"only a load balancer's group (tag {'='.join(LOAD_BALANCER_TAG)}) may "
                    f"open {ports} to the internet")
