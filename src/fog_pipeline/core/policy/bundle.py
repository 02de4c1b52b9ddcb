"""The deployable policy: everything needed to act from the robot's observations, in one
directory.

On disk::

    <dir>/policy.json            format, family (fog | ppo), transitions, frame shape, bounds
    <dir>/surrogate/             the latent filter: encoder + RSSM (config.json + safetensors)
    <dir>/actor/                 the actor (config.json + safetensors)

Normalisers live inside the models as buffers (action statistics in the RSSM, action
bounds in the actor), so the directory is self-sufficient. Load it without Kedro::

    from fog_pipeline import load_policy
    policy = load_policy("data/06_models/policy")
    policy.reset()
    action = policy.act(frame, state)  # uint8 (H, W, 3) camera image, float (P,) state

``act`` filters the latent state with the surrogate's posterior (h from the previous
state and action, z from the new frame and proprioceptive state) and returns the actor's
deterministic action. A policy trained on a camera-only robot (P = 0) takes no state.
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
    state_names: tuple[str, ...] = ()  # the proprioception it expects, in order


class DeployedPolicy:
    """A policy that acts on the robot from camera frames and proprioception: ``reset()``,
    then ``act(frame, state)``."""

    def __init__(self, surrogate: RSSM, actor: Actor, info: PolicyInfo) -> None:
        if len(info.state_names) != surrogate.config.proprio_dim:
            raise ValueError(
                f"the policy's state_names {info.state_names} do not match its surrogate's "
                f"proprio_dim {surrogate.config.proprio_dim}"
            )
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
    def act(self, frame: np.ndarray, state: np.ndarray | None = None) -> np.ndarray:
        """The action (A,) for the newest camera frame, uint8 (H, W, 3), and the robot's
        proprioceptive state read with it, float (P,) in ``info.state_names`` order."""
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.shape != tuple(self.info.frame_shape):
            raise ValueError(
                f"act() takes the camera frame as uint8 {tuple(self.info.frame_shape)}, got "
                f"{frame.dtype} {frame.shape}: render the robot at the resolution the "
                "policy was trained on"
            )
        pixels = to_model(frame[None])
        proprio = self._proprio(state)
        if self._state is None:
            h = self.surrogate.initial(1).h
            latent = self.surrogate.posterior(h, pixels, proprio)
        else:
            latent = self.surrogate.encode_next(self._state, self._last_action, pixels, proprio)
        action = self.actor.mode(latent.feature())
        self._state, self._last_action = latent, action
        return action[0].numpy().astype(np.float32)

    def _proprio(self, state: np.ndarray | None) -> torch.Tensor | None:
        names = self.info.state_names
        if not names:
            if state is not None and np.size(state):
                raise ValueError(
                    f"this policy was trained without proprioception; act() got a state of "
                    f"shape {np.shape(state)}: pass none"
                )
            return None
        if state is None:
            raise ValueError(f"act() needs the robot's state ({', '.join(names)})")
        state = np.asarray(state, dtype=np.float32)
        if state.shape != (len(names),) or not np.all(np.isfinite(state)):
            raise ValueError(
                f"act() takes the state as {len(names)} finite floats ({', '.join(names)}), "
                f"got {state.shape} {state}"
            )
        return torch.from_numpy(state)[None]

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
    info["state_names"] = tuple(info.get("state_names", ()))
    return DeployedPolicy(
        load_model(path / "surrogate", RSSM, RSSMConfig),
        load_model(path / "actor", Actor, ActorConfig),
        PolicyInfo(**info),
    )
