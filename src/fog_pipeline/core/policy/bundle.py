"""The deployable policy: everything needed to act from camera frames, in one directory.

On disk::

    <dir>/policy.json            format, family (fog | ppo), transitions, frame shape, bounds
    <dir>/surrogate/             the latent filter: encoder + RSSM (config.json + safetensors)
    <dir>/actor/                 the actor (config.json + safetensors)

Normalisers live inside the models as buffers (action statistics in the RSSM, action
bounds in the actor), so the directory is self-sufficient. Load it without Kedro::

    from fog_pipeline import load_policy
    policy = load_policy("data/06_models/policy")
    policy.reset()
    action = policy.act(frame)  # frame: uint8 (H, W, 3) camera image

``act`` filters the latent state with the surrogate's posterior (h from the previous
state and action, z from the new frame) and returns the actor's deterministic action.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from fog_pipeline.core.checkpoint import load_model, save_model
from fog_pipeline.core.io import atomic_dir
from fog_pipeline.core.policy.actor import Actor, ActorConfig
from fog_pipeline.core.surrogate.rssm import RSSM, LatentState, RSSMConfig
from fog_pipeline.core.world_model.frames import to_model

FORMAT = "fog_pipeline.policy/1"
INFO_FILE = "policy.json"


@dataclass
class PolicyInfo:
    family: str  # "fog" or "ppo": which trainer made it
    transitions: int  # world-model transitions consumed when it was saved
    frame_shape: tuple[int, int, int]  # (H, W, 3) of the camera frames it expects


class DeployedPolicy:
    """A policy that acts on the robot from camera frames: ``reset()``, then ``act(frame)``."""

    def __init__(self, surrogate: RSSM, actor: Actor, info: PolicyInfo) -> None:
        self.surrogate, self.actor, self.info = surrogate.eval(), actor.eval(), info
        self._state: LatentState | None = None
        self._last_action: torch.Tensor | None = None

    @property
    def action_low(self) -> np.ndarray:
        return self.actor.action_low.numpy().copy()

    @property
    def action_high(self) -> np.ndarray:
        return self.actor.action_high.numpy().copy()

    def reset(self) -> None:
        """Forget the filtered state: the next frame starts a new episode."""
        self._state, self._last_action = None, None

    @torch.no_grad()
    def act(self, frame: np.ndarray) -> np.ndarray:
        """The action (A,) for the newest camera frame, uint8 (H, W, 3)."""
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.shape != tuple(self.info.frame_shape):
            raise ValueError(
                f"act() takes the camera frame as uint8 {tuple(self.info.frame_shape)}, got "
                f"{frame.dtype} {frame.shape}: render the robot at the resolution the "
                "policy was trained on"
            )
        pixels = to_model(frame[None])
        if self._state is None:
            h = self.surrogate.initial(1).h
            state = self.surrogate.posterior(h, pixels)
        else:
            state = self.surrogate.encode_next(self._state, self._last_action, pixels)
        action = self.actor.mode(state.feature())
        self._state, self._last_action = state, action
        return action[0].numpy().astype(np.float32)

    def save(self, path: str | os.PathLike) -> None:
        with atomic_dir(path) as tmp:
            save_model(tmp / "surrogate", self.surrogate, self.surrogate.config)
            save_model(tmp / "actor", self.actor, self.actor.config)
            info = {"format": FORMAT, **asdict(self.info)}
            (tmp / INFO_FILE).write_text(json.dumps(info, indent=2))


def load_policy(path: str | os.PathLike) -> DeployedPolicy:
    """Load a policy bundle directory written by the ``policy`` or ``baselines`` pipeline."""
    path = Path(path)
    info_path = path / INFO_FILE
    if not info_path.is_file():
        raise FileNotFoundError(
            f"No policy bundle at {path} (missing {INFO_FILE}). Train one with "
            "`kedro run --pipeline=policy` (or `dvc repro policy`)."
        )
    info = json.loads(info_path.read_text())
    if info.pop("format", None) != FORMAT:
        raise ValueError(f"{info_path} is not a {FORMAT} bundle")
    info["frame_shape"] = tuple(info["frame_shape"])
    return DeployedPolicy(
        load_model(path / "surrogate", RSSM, RSSMConfig),
        load_model(path / "actor", Actor, ActorConfig),
        PolicyInfo(**info),
    )
