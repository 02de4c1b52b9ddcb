"""What the policy learned to do inside the model: imagined episodes, drawn as frames.

The deployed bundle acts on the global model's own frames exactly as it would on the
robot's camera and proprioception (``reset()`` / ``act(frame, state)``); each panel shows
the imagined frame and the reward (task progress) the global model predicts for it.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from fog_pipeline.core.policy.bundle import DeployedPolicy
from fog_pipeline.core.world_model.env import WorldModelEnv
from fog_pipeline.core.world_model.frames import to_uint8


@torch.no_grad()
def imagine_episodes(
    policy: DeployedPolicy, env: WorldModelEnv, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Roll the policy in ``env`` for ``steps`` steps from real contexts (one episode per
    environment). Returns frames uint8 (N, steps + 1, H, W, 3) and rewards (N, steps)."""
    env.reset()
    policies = [policy_copy(policy) for _ in range(env.num_envs)]
    frames, states = [to_uint8(env.observation)], env.state.cpu().numpy()
    rewards = []
    for _ in range(steps):
        actions = np.stack(
            [
                p.act(frame, state)
                for p, frame, state in zip(policies, frames[-1], states, strict=True)
            ]
        )
        out = env.step(torch.as_tensor(actions, device=env.device))
        frames.append(to_uint8(out.frame))
        states = out.state.cpu().numpy()
        rewards.append(out.reward.cpu().numpy())
    return np.stack(frames, axis=1), np.stack(rewards, axis=1)


def policy_copy(policy: DeployedPolicy) -> DeployedPolicy:
    """An independent filter over the same weights (one per imagined environment)."""
    twin = DeployedPolicy(policy.surrogate, policy.actor, policy.info)
    twin.reset()
    return twin


def imagination_figure(frames: np.ndarray, rewards: np.ndarray, columns: int = 8):
    """Rows of imagined episodes; every panel titled with G's predicted reward."""
    episodes, length = frames.shape[0], frames.shape[1] - 1
    picks = np.unique(np.linspace(0, length, min(columns, length + 1)).round().astype(int))
    figure = Figure(figsize=(1.1 * len(picks), 1.25 * episodes))
    axes = figure.subplots(episodes, len(picks), squeeze=False)
    for row in range(episodes):
        for col, t in enumerate(picks):
            ax = axes[row, col]
            ax.imshow(frames[row, t], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            title = f"t={t}" if t == 0 else f"t={t} r={rewards[row, t - 1]:.2f}"
            ax.set_title(title, fontsize=6)
        axes[row, 0].set_ylabel(f"episode {row}", fontsize=7)
    figure.suptitle("The trained policy inside the global world model (imagined)", fontsize=9)
    figure.tight_layout()
    return figure
