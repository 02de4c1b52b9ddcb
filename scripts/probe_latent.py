"""Does the surrogate's latent know where things are? A probe on the real robot.

Records episodes with the data-collection policy on scenes the data never used, filters
the surrogate's latent over their frames, and fits probes (least squares, and a small
MLP) from the latent feature to the true pusher position, block centre and block angle
(the backend's privileged state, which nothing trained ever sees). Prints the probes'
mean absolute errors on held-out episodes next to the targets' spread: an error near the
spread means the latent does not encode that quantity, and a policy acting on the latent
cannot use it.

    python scripts/probe_latent.py data/06_models/surrogate
    python scripts/probe_latent.py data/06_models/surrogate_on_episodes --episodes 40
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from fog_pipeline.core.checkpoint import load_model
from fog_pipeline.core.envs import make_backend
from fog_pipeline.core.episodes.recording import ExplorationPolicy
from fog_pipeline.core.surrogate.rssm import RSSM, RSSMConfig
from fog_pipeline.core.world_model.frames import to_model

TARGETS = ("pusher x", "pusher y", "block x", "block y", "block cos", "block sin")


def record(surrogate: RSSM, episodes: int, steps: int, first_seed: int):
    features, targets = [], []
    size = surrogate.config.frame_width, surrogate.config.frame_height
    with make_backend("pusht", width=size[0], height=size[1]) as backend:
        policy = ExplorationPolicy()
        for episode in range(episodes):
            policy.reset(np.random.default_rng(episode))
            frames, actions, states = [backend.reset(first_seed + episode)], [], []
            proprio = [backend.read_state()]
            for _ in range(steps):
                state = backend.privileged_state()
                angle = state["block_angle"]
                states.append(
                    [*state["agent_xy"], *state["block_centroid_xy"], np.cos(angle), np.sin(angle)]
                )
                actions.append(policy.act(frames[-1], backend))
                frames.append(backend.step(actions[-1]).frame)
                proprio.append(backend.read_state())
            observed = torch.as_tensor(np.stack(proprio[:steps]))[None]
            with torch.no_grad():
                posteriors, _ = surrogate.observe(
                    to_model(np.stack(frames[:steps]))[None],
                    torch.as_tensor(np.stack(actions))[None],
                    sample=False,
                    proprio=observed if surrogate.config.proprio_dim else None,
                )
            features.append(posteriors.feature()[0].numpy())
            targets.append(np.asarray(states))
    return features, targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("surrogate", help="an RSSM directory (config.json + safetensors)")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=200_000)
    args = parser.parse_args()
    torch.manual_seed(0)
    surrogate = load_model(args.surrogate, RSSM, RSSMConfig).eval()
    features, targets = record(surrogate, args.episodes, args.steps, args.first_seed)
    split = args.episodes * 3 // 4  # whole episodes held out
    train_x, test_x = np.concatenate(features[:split]), np.concatenate(features[split:])
    train_y, test_y = np.concatenate(targets[:split]), np.concatenate(targets[split:])

    design = np.c_[train_x, np.ones(len(train_x))]
    weights = np.linalg.lstsq(design, train_y, rcond=None)[0]
    linear = np.abs(np.c_[test_x, np.ones(len(test_x))] @ weights - test_y).mean(0)

    mean, std = train_y.mean(0), train_y.std(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(train_x.shape[1], 256), torch.nn.SiLU(), torch.nn.Linear(256, 6)
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    inputs, goals = torch.tensor(train_x), torch.tensor((train_y - mean) / std).float()
    for _ in range(2000):
        index = torch.randint(len(inputs), (256,))
        loss = (net(inputs[index]) - goals[index]).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = net(torch.tensor(test_x)).numpy() * std + mean
    mlp = np.abs(predicted - test_y).mean(0)
    spread = np.abs(test_y - test_y.mean(0)).mean(0)

    print(f"{args.surrogate}: probe MAE on {args.episodes - split} held-out episodes")
    print(f"{'target':<10} {'linear':>8} {'mlp':>8} {'spread':>8}")
    for name, *row in zip(TARGETS, linear, mlp, spread, strict=True):
        print(f"{name:<10} " + " ".join(f"{value:8.2f}" for value in row))
    print("(positions in table units, 512 = table width; spread = MAE of predicting the mean)")


if __name__ == "__main__":
    main()
