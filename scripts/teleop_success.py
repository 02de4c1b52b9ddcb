"""Success rate of the Push-T teleoperator stand-in (``PushTTeleoperator``).

Runs one episode per seed, on one process, and prints the success rate with its Wilson
95 % interval, the mean final coverage, the mean episode length and the mean cost of one
``act()`` call::

    .venv/bin/python scripts/teleop_success.py --first-seed 0 --episodes 100 \
        --set action_noise=0.1 --set wander_rate=0

``--set key=value`` overrides one ``TeleoperatorConfig`` field (validated like the
pipeline's parameters; the value is read as YAML, so numbers are numbers).

``--pose-noise XY DEGREES`` makes the operator see the block through a noisy pose
estimate: every step, the block's position gets Gaussian noise of XY table units and its
angle DEGREES (about the centre of mass). That is the precision a policy's perception
must reach for this closed-loop controller to still succeed: a bound on what any
pixel-based policy needs from its camera and encoder::

    .venv/bin/python scripts/teleop_success.py --first-seed 300000 --episodes 20 \
        --set action_noise=0 --set wander_rate=0 --set mistake_rate=0 --pose-noise 4 4
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")

import numpy as np
import yaml

from fog_pipeline.core.config import parse_config
from fog_pipeline.core.envs import make_backend
from fog_pipeline.core.episodes.recording import Policy, record_episode
from fog_pipeline.core.episodes.teleop import PushTTeleoperator, TeleoperatorConfig
from fog_pipeline.core.evaluation.stats import wilson_interval

try:
    from tqdm import tqdm
except ImportError:  # the progress bar is optional

    def tqdm(iterable, **_):
        return iterable


class _TimedPolicy:
    """Delegates to a policy, adding up the wall time of its act() calls."""

    def __init__(self, policy: Policy) -> None:
        self.policy, self.description = policy, policy.description
        self.seconds, self.calls = 0.0, 0

    def reset(self, rng: np.random.Generator) -> None:
        self.policy.reset(rng)

    def act(self, frame: np.ndarray, backend: Any) -> np.ndarray:
        start = time.perf_counter()
        action = self.policy.act(frame, backend)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return action


class _NoisyPose:
    """The backend as the operator sees it: the block pose with Gaussian estimation noise."""

    def __init__(self, backend: Any, xy: float, degrees: float) -> None:
        self._backend, self._xy, self._angle = backend, xy, np.radians(degrees)
        self._rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        self._rng = np.random.default_rng([seed, 1])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def privileged_state(self) -> dict[str, Any]:
        state = self._backend.privileged_state()
        shift = self._rng.normal(0.0, self._xy, size=2)
        turn = self._rng.normal(0.0, self._angle)
        centre = state["block_centroid_xy"]
        c, s = np.cos(turn), np.sin(turn)
        state["block_xy"] = centre + np.array([[c, -s], [s, c]]) @ (state["block_xy"] - centre)
        state["block_xy"] = state["block_xy"] + shift
        state["block_centroid_xy"] = centre + shift
        state["block_angle"] = state["block_angle"] + turn
        return state


class _SeesNoisyPose:
    """Delegates to a policy, handing it the noisy view of the backend."""

    def __init__(self, policy: Policy, view: _NoisyPose) -> None:
        self.policy, self.view, self.description = policy, view, policy.description

    def reset(self, rng: np.random.Generator) -> None:
        self.policy.reset(rng)

    def act(self, frame: np.ndarray, backend: Any) -> np.ndarray:
        return self.policy.act(frame, self.view)


def _overrides(pairs: list[str]) -> dict[str, object]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        params[key.strip()] = yaml.safe_load(value)
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first-seed", type=int, default=100000)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--verbose", action="store_true", help="one line per episode")
    parser.add_argument(
        "--pose-noise",
        nargs=2,
        type=float,
        default=(0.0, 0.0),
        metavar=("XY", "DEGREES"),
        help="std of the noise on the block pose the operator sees (table units, degrees)",
    )
    args = parser.parse_args()

    config = parse_config(TeleoperatorConfig, _overrides(args.set), "teleop")
    policy = PushTTeleoperator(config)
    print(policy.description)
    successes, coverages, lengths = 0, [], []
    with make_backend("pusht", max_episode_steps=args.max_steps) as backend:
        view = _NoisyPose(backend, *args.pose_noise)
        timed = _TimedPolicy(_SeesNoisyPose(policy, view) if any(args.pose_noise) else policy)
        seeds = range(args.first_seed, args.first_seed + args.episodes)
        for seed in tqdm(seeds, desc="episodes", disable=args.verbose):
            view.reset(seed)
            # record_episode, as the pipeline records: the same policy stream per seed.
            arrays = record_episode(backend, timed, seed, args.max_steps).arrays()
            succeeded = bool(arrays["success"][-1])
            coverage = backend.privileged_state()["coverage"]  # stop() leaves the block
            successes += succeeded
            coverages.append(coverage)
            lengths.append(len(arrays["actions"]))
            if args.verbose:
                print(
                    f"seed {seed}: success={succeeded} coverage={coverage:.3f} steps={lengths[-1]}"
                )

    low, high = wilson_interval(successes, args.episodes)
    print(
        f"success {successes}/{args.episodes} = {successes / args.episodes:.1%} "
        f"(Wilson 95 %: {low:.1%} .. {high:.1%})"
    )
    print(f"mean final coverage {np.mean(coverages):.3f}, mean steps {np.mean(lengths):.1f}")
    print(f"mean act() {1e3 * timed.seconds / timed.calls:.2f} ms over {timed.calls} calls")


if __name__ == "__main__":
    main()
