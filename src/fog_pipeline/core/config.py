"""Typed configuration: plain dataclasses validated from parameter dicts.

Configs are ordinary dataclasses (so checkpoints can store ``dataclasses.asdict``);
pydantic validates them, because it turns a wrong key, type or range into a message that
names the offending entry. Mark a dataclass ``__pydantic_config__ = STRICT_KEYS`` to
reject unknown keys; use ``Annotated[float, Field(gt=0)]`` for ranges.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError

STRICT_KEYS = ConfigDict(extra="forbid")

T = TypeVar("T")


class ConfigError(ValueError):
    """Parameters that do not fit their typed config."""


def parse_config(cls: type[T], params: Mapping[str, Any] | None, where: str) -> T:
    """Validate ``params`` into ``cls``; ``where`` names the parameter section for the error."""
    try:
        return TypeAdapter(cls).validate_python(dict(params or {}))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in (where, *error["loc"]))
            unknown = error["type"] == "unexpected_keyword_argument"
            problem = "unknown key" if unknown else error["msg"]
            problems.append(f"  {key}: {problem} (got {error.get('input')!r})")
        raise ConfigError(
            f"Invalid parameters for {cls.__name__}:\n"
            + "\n".join(problems)
            + f"\nFix them in conf/<env>/parameters_*.yml under `{where.split('.')[0]}`."
        ) from None


def parse_sized(
    cls: type[T], params: Mapping[str, Any] | None, derived: Mapping[str, Any], where: str
) -> T:
    """Validate ``params`` with the ``derived`` sizes (taken from the data or the models)
    into ``cls``; a derived key set in ``params`` is an error that names it."""
    params = dict(params or {})
    clash = sorted(set(derived) & set(params))
    if clash:
        key = clash[0]
        raise ConfigError(
            f"{where}.{key} is derived from the data or the models ({derived[key]!r}); "
            f"remove it from conf/<env>/parameters_*.yml."
        )
    return parse_config(cls, {**params, **derived}, where)
