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
Several robots at once: ``reset_robot(robot, episode)`` and ``act_batch(robots, frames,
states)`` keep one filter per robot, each giving exactly the actions ``act`` would.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from fog_pipeline.core.checkpoint import load_model, save_model
from fog_pipeline.core.io import atomic_dir, recover
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
        # Per robot: the filtered latent state and the action taken from it.
        self._filters: dict[int, tuple[LatentState, torch.Tensor]] = {}

    @property
    def action_low(self) -> np.ndarray:
        return self.actor.action_low.numpy().copy()

    @property
    def action_high(self) -> np.ndarray:
        return self.actor.action_high.numpy().copy()

    def reset(self) -> None:
        """Forget the filtered state: the next frame starts a new episode."""
        self.reset_robot(0)

    def reset_robot(self, robot: int, episode: int | None = None) -> None:
        """Robot ``robot``'s next frame starts a new episode (which one does not matter:
        the policy is deterministic)."""
        self._filters.pop(robot, None)

    def act(self, frame: np.ndarray, state: np.ndarray | None = None) -> np.ndarray:
        """The action (A,) for the newest camera frame, uint8 (H, W, 3), and the robot's
        proprioceptive state read with it, float (P,) in ``info.state_names`` order."""
        frames = np.asarray(frame)[None]
        return self.act_batch([0], frames, None if state is None else np.asarray(state)[None])[0]

    @torch.no_grad()
    def act_batch(
        self, robots: Sequence[int], frames: np.ndarray, states: np.ndarray | None = None
    ) -> np.ndarray:
        """The actions (N, A) of robots ``robots`` for their newest frames, uint8
        (N, H, W, 3), and states, float (N, P); each robot has its own filter.

        The networks run robot by robot: CPU kernels round differently with the batch
        size (by ~1e-7 here), contacts amplify that over an episode, and a robot's action
        must not depend on how many others share the call. They run on one thread: at
        batch 1 a second one only waits, and beside busy simulator processes (parallel
        evaluation) it waits for a free core, which made a step 10x slower.
        """
        frames = np.asarray(frames)
        expected = (len(robots), *self.info.frame_shape)
        if frames.dtype != np.uint8 or frames.shape != expected:
            raise ValueError(
                f"act() takes the camera frame as uint8 {tuple(self.info.frame_shape)}, got "
                f"{frames.dtype} {frames.shape[1:]}: render the robot at the resolution the "
                "policy was trained on"
            )
        proprio = self._proprio(states, len(robots))
        with _one_thread():
            return np.stack(
                [
                    self._act_one(robot, frames[k], None if proprio is None else proprio[k])
                    for k, robot in enumerate(robots)
                ]
            )

    def _act_one(self, robot: int, frame: np.ndarray, proprio: torch.Tensor | None) -> np.ndarray:
        pixels = to_model(frame[None])
        proprio = None if proprio is None else proprio[None]
        if robot in self._filters:
            latent = self.surrogate.encode_next(*self._filters[robot], pixels, proprio)
        else:
            latent = self.surrogate.posterior(self.surrogate.initial(1).h, pixels, proprio)
        action = self.actor.mode(latent.feature())
        self._filters[robot] = (latent, action)
        return action[0].numpy().astype(np.float32)

    def _proprio(self, states: np.ndarray | None, count: int) -> torch.Tensor | None:
        names = self.info.state_names
        if not names:
            if states is not None and np.size(states):
                raise ValueError(
                    f"this policy was trained without proprioception; act() got a state of "
                    f"shape {np.shape(states)[1:]}: pass none"
                )
            return None
        if states is None:
            raise ValueError(f"act() needs the robot's state ({', '.join(names)})")
        states = np.asarray(states, dtype=np.float32)
        if states.shape != (count, len(names)) or not np.all(np.isfinite(states)):
            raise ValueError(
                f"act() takes the state as {len(names)} finite floats ({', '.join(names)}), "
                f"got {states.shape[1:]} {states}"
            )
        return torch.from_numpy(states)

    def save(self, path: str | os.PathLike) -> None:
        with atomic_dir(path) as tmp:
            save_model(tmp / "surrogate", self.surrogate, self.surrogate.config)
            save_model(tmp / "actor", self.actor, self.actor.config)
            info = {"format": FORMAT, **asdict(self.info)}
            (tmp / INFO_FILE).write_text(json.dumps(info, indent=2))


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def load_policy(path: str | os.PathLike) -> DeployedPolicy:
    """Load a policy bundle directory written by the ``policy`` or ``baselines`` pipeline."""
    path = recover(path)  # the old bundle, if a swap was cut between its renames
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
