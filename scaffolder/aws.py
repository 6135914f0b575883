"""AWS clients and errors of the commands that act on a real account (``preflight``,
``tunnel``, ``model upload``, ``endpoint prepare|verify|cleanup``).

boto3 is imported only when a client is made. AWS's errors become mlscaffold's: a missing
login is a usage error (exit 2); what AWS refuses, or a call that fails, is a failure (exit 1);
each one line naming the action and the fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import MlscaffoldError, UsageError

__all__ = ["aws_client", "aws_errors", "error_code"]

_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden", "403"}
_LOGIN_HINT = ("log in (`aws sso login --profile NAME` and `export AWS_PROFILE=NAME`) or set "
               "the AWS_* credential variables; in CI, assume the deploy role first")


def aws_client(service: str, region: str) -> Any:
    """A boto3 client of `service` in `region`, default credential chain, standard retries."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(service, region_name=region,
                                          config=Config(retries={"mode": "standard"}))


def error_code(error: BaseException) -> str:
    """The code of a botocore ClientError (``""`` for anything else)."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


@contextmanager
def aws_errors(doing: str, permissions: str) -> Iterator[None]:
    """Turn AWS's errors inside the block into MlscaffoldError / UsageError.

    `doing` completes "cannot ...", e.g. ``"upload the model to s3://bucket/key"``;
    `permissions` names the IAM actions the block needs, for an access-denied hint.
    """
    from botocore import exceptions

    try:
        yield
    except (exceptions.NoCredentialsError, exceptions.PartialCredentialsError) as error:
        raise UsageError(f"no usable AWS credentials to {doing} ({_one_line(error)})",
                         hint=_LOGIN_HINT) from None
    except exceptions.ProfileNotFound as error:
        raise UsageError(_one_line(error), hint="set AWS_PROFILE to a profile of ~/.aws/config "
                                                "(`aws configure list-profiles`)") from None
    except (exceptions.TokenRetrievalError, exceptions.SSOError) as error:
        raise MlscaffoldError(f"the AWS login has expired ({_one_line(error)})",
                              hint="log in again: `aws sso login`") from None
    except exceptions.ClientError as error:
        code = error_code(error) or "Unknown"
        message = _one_line(error.response.get("Error", {}).get("Message") or error)
        if code in _EXPIRED:
            raise MlscaffoldError(f"the AWS credentials have expired ({code})",
                                  hint="log in again (`aws sso login`) or refresh the session "
                                       "token") from None
        if code in _DENIED:
            raise MlscaffoldError(f"AWS denied {error.operation_name}: cannot {doing} "
                                  f"({message})",
                                  hint=f"allow {permissions} for this identity") from None
        raise MlscaffoldError(f"cannot {doing}: {error.operation_name} failed: {code}: "
                              f"{message}") from None
    except exceptions.BotoCoreError as error:
        raise MlscaffoldError(f"cannot {doing}: {_one_line(error)}",
                              hint="check the network and the stack's region") from None
