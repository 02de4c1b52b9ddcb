"""Robot backends behind one interface (:class:`RobotBackend`), chosen by name.

To plug in a real robot, subclass :class:`RobotBackend` and add a factory to
``_FACTORIES``. Backends are imported only when made, so importing this package does not
pull in a simulator (pygame, pymunk) or a robot driver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fog_pipeline.core.config import parse_config
from fog_pipeline.core.envs.robot import RobotBackend, StepResult

__all__ = ["RobotBackend", "StepResult", "known_backends", "make_backend"]


def _make_pusht(kwargs: Mapping[str, Any]) -> RobotBackend:
    from fog_pipeline.core.envs.pusht import PushTBackend, PushTConfig

    return PushTBackend(parse_config(PushTConfig, kwargs, where="backend.pusht"))


def _make_gymnasium(kwargs: Mapping[str, Any]) -> RobotBackend:
    from fog_pipeline.core.envs.gymnasium_backend import GymnasiumBackend, GymnasiumConfig

    return GymnasiumBackend(parse_config(GymnasiumConfig, kwargs, where="backend.gymnasium"))


def _make_remote(kwargs: Mapping[str, Any]) -> RobotBackend:
    from fog_pipeline.core.envs.remote import RemoteBackend, RemoteConfig

    return RemoteBackend(parse_config(RemoteConfig, kwargs, where="backend.remote"))


_FACTORIES: dict[str, Callable[[Mapping[str, Any]], RobotBackend]] = {"pusht": _make_pusht}
_FACTORIES["gymnasium"] = _make_gymnasium
_FACTORIES["remote"] = _make_remote


def known_backends() -> list[str]:
    return sorted(_FACTORIES)


def make_backend(name: str, **kwargs: Any) -> RobotBackend:
    """Build the backend registered as ``name`` from its config keys.

    Raises ``ValueError`` for an unknown name (listing the known ones) and
    :class:`~fog_pipeline.core.config.ConfigError` (a ``ValueError``) naming any unknown
    or invalid key.
    """
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(
            f"unknown robot backend {name!r}; known backends: {', '.join(known_backends())}"
        ) from None
    return factory(kwargs)
