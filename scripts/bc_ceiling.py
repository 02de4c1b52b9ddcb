"""Diagnostic: how well can a plain behaviour-cloned policy do on the recorded behaviour?

FoG starts from, and is anchored to, a behaviour-cloned actor: a unimodal Gaussian MLP
fitted to the recorded actions. This script bounds what that recipe can give, with
everything in its favour: the policy reads the *privileged* scene state (pusher,
controller target, block position and angle; no camera, no world model, no surrogate)
and the previous action (the operator's push/walk mode shows in it). It records the
teleoperator stand-in on the collect settings' scenes, fits the MLP by mean-squared error
on the actions (the Gaussian's mean), and scores it on validation scenes (seeds
300000.., disjoint from the recorded and evaluation scenes)::

    .venv/bin/python scripts/bc_ceiling.py --episodes 20
    .venv/bin/python scripts/bc_ceiling.py --clean   # the operator without noise and lapses
    .venv/bin/python scripts/bc_ceiling.py --operator-mode  # + the operator's hidden mode

    .venv/bin/python scripts/bc_ceiling.py --clean --dagger 3  # + on-policy relabelling
    .venv/bin/python scripts/bc_ceiling.py --clean --chunk 10  # action chunks

``--operator-mode`` also feeds the operator's hidden plan (its chosen contact, one-hot,
and whether it is pushing or walking), read from a shadow copy of the operator that
runs beside the cloned policy at evaluation. If that closes the gap, the missing
ingredient is memory of the plan (a recurrent or chunked policy), not the policy's fit.

``--dagger N`` adds N rounds of DAgger: the cloned policy drives 50 fresh scenes (seeds
after the recorded ones), a clean shadow operator labels every state it visits, and the
policy is refitted on everything so far. That removes the drift into states the
demonstrations never show (compounding error); if the clone still fails, the operator's
policy is beyond what the MLP can fit, not just beyond what the data covers.

``--chunk K`` fits K future actions at once and executes the first K // 2 of each
prediction before predicting again (action chunking, as in ACT and Diffusion Policy),
which lets the clone commit to one of the operator's modes for a while.

``--head flow`` replaces the mean-squared-error fit with a multimodal one: conditional
flow matching (a rectified flow from Gaussian noise to the action chunk, the recipe of
Diffusion Policy with a flow in place of the diffusion), sampled with ``--flow-steps``
Euler steps. A sample commits to one of the operator's modes instead of averaging them.

``--observation camera`` takes the privileged scene away: the clone reads what the
product's policy reads, the camera (this frame and the previous one, through a small
convolutional encoder trained with the head) and the proprioception (pusher and target),
plus the previous action. The gap between the two observations is what perception at
the camera's resolution costs the recipe, still without a world model.

``--shift N`` moves each training sample's frames by up to N pixels (DrQ's random
shift), and ``--encoder keypoints`` swaps the encoder's stride-2 stack for a spatial
softmax (keypoint positions with sub-pixel precision): the two usual answers when an
image clone memorises its demonstrations instead of locating the objects in them.
``--resolution S`` renders S×S frames instead of collect's, and ``--recorded N`` records
N operator episodes instead of collect's ``n_episodes``.

``--out run.json`` keeps the per-scene results; ``--against other.json`` prints this
run minus that one, paired on the same scenes (95 % Student-t intervals of the mean
difference in success and final coverage)::

    .venv/bin/python scripts/bc_ceiling.py --clean --chunk 8 --steps 30000 --out mean.json
    .venv/bin/python scripts/bc_ceiling.py --clean --chunk 8 --steps 30000 --head flow \
        --against mean.json

If this ceiling is far below the operator's own success, the behaviour prior (FoG's start
and anchor) is limited by its policy class, not by perception or the world model.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm, trange

from fog_pipeline.core.envs import RobotBackend, make_backend
from fog_pipeline.core.episodes.recording import record_episode
from fog_pipeline.core.episodes.teleop import PushTTeleoperator, TeleoperatorConfig
from fog_pipeline.core.evaluation.stats import mean_interval, wilson_interval
from fog_pipeline.diagnostics import VALIDATION_FIRST_SEED, load_project


def scene_features(backend: RobotBackend) -> np.ndarray:
    """Pusher, target and block position (xy / 256 - 1) and the block angle as sin, cos."""
    scene = backend.privileged_state()
    xy = np.concatenate([scene["agent_xy"], scene["target_xy"], scene["block_xy"]]) / 256 - 1
    angle = scene["block_angle"]
    return np.concatenate([xy, [np.sin(angle), np.cos(angle)]]).astype(np.float32)


class Observer:
    """What the clone reads before each action: the privileged scene, or the camera's last
    two frames (scaled to [0, 1], channels first, flattened) and the proprioception."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._last: np.ndarray | None = None

    def reset(self) -> None:
        self._last = None

    def __call__(self, frame: np.ndarray, backend: RobotBackend) -> np.ndarray:
        if self.kind == "privileged":
            return scene_features(backend)
        last = frame if self._last is None else self._last
        self._last = frame
        pixels = np.concatenate([last, frame], axis=-1).transpose(2, 0, 1).reshape(-1) / 255.0
        return np.concatenate([pixels, backend.read_state()]).astype(np.float32)


def operator_mode(operator: PushTTeleoperator) -> np.ndarray:
    """The operator's plan before it acts: chosen contact (one-hot) and pushing flag."""
    contact = np.zeros(len(operator._points) + 1, np.float32)
    contact[-1 if operator._contact is None else operator._contact] = 1.0
    return np.append(contact, np.float32(operator._pushing)).astype(np.float32)


class _Recorder:
    """Delegates to the operator, keeping what the observer read before each act."""

    def __init__(self, operator: PushTTeleoperator, observer: Observer, with_mode: bool):
        self.operator, self.description = operator, operator.description
        self.observer, self.with_mode = observer, with_mode
        self.features: list[np.ndarray] = []

    def reset(self, rng: np.random.Generator) -> None:
        self.operator.reset(rng)
        self.observer.reset()

    def act(self, frame: np.ndarray, backend: RobotBackend) -> np.ndarray:
        features = self.observer(frame, backend)
        action = self.operator.act(frame, backend)
        if self.with_mode:  # the plan it acted on (updated by this act)
            features = np.concatenate([features, operator_mode(self.operator)])
        self.features.append(features)
        return action


_CLEAN = {"action_noise": 0.0, "wander_rate": 0.0, "mistake_rate": 0.0}


def chunks(actions: np.ndarray, size: int) -> np.ndarray:
    """(T, 2) actions -> (T, 2 * size): each step's next ``size`` actions (the last one
    repeated past the episode's end)."""
    padded = np.concatenate([actions, np.repeat(actions[-1:], size - 1, axis=0)])
    return np.stack([padded[t : t + size].reshape(-1) for t in range(len(actions))])


def _mlp(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, 512), nn.SiLU(), nn.Linear(512, 512), nn.SiLU(),
        nn.Linear(512, 512), nn.SiLU(), nn.Linear(512, outputs),
    )  # fmt: skip


def random_shift(image: torch.Tensor, pad: int) -> torch.Tensor:
    """Each sample moved by up to ``pad`` whole pixels (edges replicated), the same shift
    for both frames of its stack: DrQ's augmentation, so that the encoder cannot key its
    output to where a particular recorded scene's pixels sit."""
    n, _, height, width = image.shape
    padded = nn.functional.pad(image, (pad,) * 4, mode="replicate")
    rows = torch.randint(2 * pad + 1, (n, 1, 1)) + torch.arange(height)[None, :, None]
    cols = torch.randint(2 * pad + 1, (n, 1, 1)) + torch.arange(width)[None, None, :]
    flat = (rows * (width + 2 * pad) + cols).reshape(n, 1, -1).expand(-1, image.shape[1], -1)
    return padded.flatten(2).gather(2, flat).reshape(image.shape)


class SpatialSoftmax(nn.Module):
    """Each channel's softmax-weighted mean pixel position in [-1, 1]: a keypoint per
    channel, with sub-pixel precision, as in robomimic's and Diffusion Policy's encoders."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        n, channels, height, width = features.shape
        weights = features.flatten(2).softmax(-1).reshape(n, channels, height, width)
        ys = torch.linspace(-1, 1, height)
        xs = torch.linspace(-1, 1, width)
        x = (weights.sum(2) * xs).sum(-1)
        y = (weights.sum(3) * ys).sum(-1)
        return torch.cat([x, y], dim=1)


class CameraEncoder(nn.Module):
    """The two-frame stack through convolutions, joined with the rest of the input
    (proprioception, previous action); identity for ``pixels == 0``. ``conv``: four
    stride-2 convolutions and a linear layer; ``keypoints``: one stride-2 and two stride-1
    convolutions, then a spatial softmax (32 keypoints)."""

    def __init__(self, inputs: int, pixels: int, size: int, kind: str, shift: int) -> None:
        super().__init__()
        self.pixels, self.size, self.shift = pixels, size, shift
        self.outputs = inputs
        if not pixels:
            return
        if kind == "keypoints":
            self.convs = nn.Sequential(
                nn.Conv2d(6, 32, 3, 2, 1), nn.SiLU(), nn.Conv2d(32, 32, 3, 1, 1), nn.SiLU(),
                nn.Conv2d(32, 32, 3, 1, 1), nn.SiLU(), nn.Conv2d(32, 32, 1), SpatialSoftmax(),
            )  # fmt: skip
            self.outputs = 64 + inputs - pixels
        else:
            self.convs = nn.Sequential(
                nn.Conv2d(6, 16, 3, 2, 1), nn.SiLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.SiLU(),
                nn.Conv2d(32, 64, 3, 2, 1), nn.SiLU(), nn.Conv2d(64, 64, 3, 2, 1), nn.SiLU(),
                nn.Flatten(), nn.LazyLinear(256), nn.SiLU(),
            )  # fmt: skip
            self.outputs = 256 + inputs - pixels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.pixels:
            return x
        image = x[:, : self.pixels].reshape(-1, 6, self.size, self.size)
        if self.training and self.shift:
            image = random_shift(image, self.shift)
        return torch.cat([self.convs(image), x[:, self.pixels :]], dim=1)


class MeanHead(nn.Module):
    """The Gaussian's mean, fitted by mean-squared error: FoG's behaviour prior today."""

    def __init__(self, encoder: CameraEncoder, outputs: int) -> None:
        super().__init__()
        self.encoder, self.net = encoder, _mlp(encoder.outputs, outputs)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self(x) - y).square().mean()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.encoder(x))


class FlowHead(nn.Module):
    """Conditional flow matching: a velocity field that carries Gaussian noise to the
    action chunk along straight lines (rectified flow); sampling integrates it."""

    def __init__(self, encoder: CameraEncoder, outputs: int, steps: int) -> None:
        super().__init__()
        self.encoder, self.net = encoder, _mlp(encoder.outputs + outputs + 1, outputs)
        self.outputs, self.steps = outputs, steps

    def _velocity(self, h: torch.Tensor, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([h, a, t], dim=1))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        noise, t = torch.randn_like(y), torch.rand(len(y), 1)
        moved = (1 - t) * noise + t * y
        return (self._velocity(self.encoder(x), moved, t) - (y - noise)).square().mean()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        a = torch.randn(len(x), self.outputs)
        for i in range(self.steps):
            a = a + self._velocity(h, a, torch.full((len(x), 1), i / self.steps)) / self.steps
        return a


def fit(inputs: list[np.ndarray], targets: list[np.ndarray], args: argparse.Namespace):
    """A policy fitted to the recorded actions (the next ``args.chunk`` of them per step)
    with the head ``args.head``; prints the action MSE of its predictions (samples, for
    the flow) on the training data."""
    x = torch.from_numpy(np.concatenate(inputs))
    y = torch.from_numpy(np.concatenate([chunks(t, args.chunk) for t in targets]))
    encoder = CameraEncoder(x.shape[1], args.pixels, args.size, args.encoder, args.shift)
    if args.pixels:
        encoder(x[:2])  # materialises the lazy layer before the optimiser sees it
    if args.head == "flow":
        policy = FlowHead(encoder, y.shape[1], args.flow_steps)
    else:
        policy = MeanHead(encoder, y.shape[1])
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)
    for _ in trange(args.steps, desc=f"fit ({args.head} head)", mininterval=5):
        batch = torch.randint(len(x), (256,))
        loss = policy.loss(x[batch], y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    policy.eval()
    with torch.no_grad():
        error = torch.cat([policy(part) for part in x.split(4096)]) - y
        print(f"fit: action MSE {error.square().mean().item():.3f} on {len(x)} steps")
    return policy


def _episodes(policy, backend, args, params, operator, seeds, relabel: bool):
    """Runs the clone on ``seeds``; with ``relabel``, also the clean operator's action and
    the clone's input at every visited state (DAgger's labels)."""
    shadow = PushTTeleoperator(TeleoperatorConfig(**operator | _CLEAN))
    observer = Observer(args.observation)
    results, inputs, targets = [], [], []
    for seed in seeds:
        frame = backend.reset(seed)
        observer.reset()
        shadow.reset(np.random.default_rng(seed))
        initial, best, action = backend.read_reward(), 0.0, np.zeros(2, np.float32)
        seen, wanted, queue = [], [], []
        for _ in range(params["evaluation"]["max_steps"]):
            with torch.no_grad():
                features = observer(frame, backend)
                if args.operator_mode or relabel:
                    expert = shadow.act(frame, backend)  # its plan (and action) here
                if args.operator_mode:
                    features = np.concatenate([features, operator_mode(shadow)])
                features = np.concatenate([features, action]).astype(np.float32)
                if relabel:
                    seen.append(features)
                    wanted.append(expert)
                if not queue:  # a new chunk: execute its first half
                    planned = policy(torch.from_numpy(features)[None])[0].clamp(-1, 1)
                    queue = list(planned.numpy().reshape(args.chunk, 2)[: max(args.chunk // 2, 1)])
                action = queue.pop(0)
            result = backend.step(action)
            frame = result.frame
            best = max(best, result.reward)
            if result.terminated or result.truncated:
                break
        results.append((result.success, result.reward, best - initial))
        if relabel:
            inputs.append(np.stack(seen))
            targets.append(np.stack(wanted))
    return results, inputs, targets


def score(policy, backend, args, params, operator):
    """Successes, final coverages and improvements on the validation scenes."""
    seeds = range(args.first_seed, args.first_seed + args.episodes)
    results, _, _ = _episodes(policy, backend, args, params, operator, seeds, relabel=False)
    success, final, gained = zip(*results, strict=True)
    return [bool(s) for s in success], list(final), list(gained)


def paired(mine: dict, theirs: dict) -> None:
    """Prints this run minus ``theirs`` on the same scenes."""
    if mine["seeds"] != theirs["seeds"]:
        raise SystemExit("--against: the two runs were scored on different scenes")
    for key in ("success", "final"):
        difference = np.subtract(mine[key], theirs[key], dtype=np.float64)
        mean, low, high = mean_interval(difference)
        print(f"paired {key}: {mean:+.3f} (95 % {low:+.3f}, {high:+.3f})")


def relabel(policy, backend, args, params, operator, seeds):
    """DAgger's data: the clone's inputs on its own scenes and the operator's actions."""
    _, inputs, targets = _episodes(policy, backend, args, params, operator, seeds, relabel=True)
    return inputs, targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default=None, help="Kedro conf environment (default: base)")
    parser.add_argument("--episodes", type=int, default=20, help="validation scenes")
    parser.add_argument("--first-seed", type=int, default=VALIDATION_FIRST_SEED)
    parser.add_argument("--steps", type=int, default=4000, help="Adam steps of the fit")
    parser.add_argument("--clean", action="store_true", help="operator without noise, lapses")
    parser.add_argument(
        "--operator-mode", action="store_true", help="also feed the operator's hidden plan"
    )
    parser.add_argument("--dagger", type=int, default=0, help="rounds of DAgger relabelling")
    parser.add_argument("--chunk", type=int, default=1, help="actions predicted per step")
    parser.add_argument(
        "--head", choices=("mean", "flow"), default="mean", help="MSE mean or flow matching"
    )
    parser.add_argument("--flow-steps", type=int, default=10, help="Euler steps per sample")
    parser.add_argument("--out", type=Path, help="write the per-scene results here (JSON)")
    parser.add_argument("--against", type=Path, help="a run's --out file to pair with")
    parser.add_argument(
        "--observation",
        choices=("privileged", "camera"),
        default="privileged",
        help="the true scene, or the camera's last two frames and the proprioception",
    )
    parser.add_argument(
        "--encoder",
        choices=("conv", "keypoints"),
        default="conv",
        help="camera encoder: stride-2 convolutions, or a spatial-softmax keypoint encoder",
    )
    parser.add_argument(
        "--shift", type=int, default=0, help="random-shift augmentation of the frames (pixels)"
    )
    parser.add_argument(
        "--resolution",
        type=int,
        help="camera frames of this many pixels a side (default: collect's)",
    )
    parser.add_argument(
        "--recorded", type=int, help="operator episodes to record (default: collect's n_episodes)"
    )
    args = parser.parse_args()
    if args.observation != "camera" and (args.shift or args.encoder != "conv"):
        parser.error("--shift and --encoder act on the camera: add --observation camera")
    if args.against and not args.against.is_file():
        parser.error(f"--against {args.against}: no such file (a run's --out)")

    _, params = load_project(args.env)
    collect = params["collect"]
    operator = {**collect["teleoperator"]}
    if args.clean:
        operator |= _CLEAN
    config = TeleoperatorConfig(**operator)
    options = {**collect.get("backend_options", {})}
    if args.resolution:
        options |= {"width": args.resolution, "height": args.resolution}
    args.size = options["height"]
    if args.observation == "camera" and options["width"] != args.size:
        parser.error("--observation camera needs square frames")
    recorded = args.recorded or collect["n_episodes"]
    args.pixels = 6 * args.size**2 if args.observation == "camera" else 0
    torch.manual_seed(params["seed"])
    started = time.perf_counter()
    inputs, targets = [], []
    with make_backend(collect["backend"], **options) as backend:
        first = collect["first_env_seed"]
        seeds = range(first, first + recorded)
        for seed in tqdm(seeds, desc="record the operator", mininterval=5):
            recorder = _Recorder(
                PushTTeleoperator(config), Observer(args.observation), args.operator_mode
            )
            episode = record_episode(backend, recorder, seed, collect["max_steps"])
            previous = np.concatenate([np.zeros((1, 2), np.float32), episode.actions[:-1]])
            inputs.append(np.concatenate([np.stack(recorder.features), previous], axis=1))
            targets.append(episode.actions)
        print(f"recorded {sum(map(len, inputs))} steps in {time.perf_counter() - started:.0f} s")

        policy = fit(inputs, targets, args)
        successes, final, gained = score(policy, backend, args, params, operator)
        print(f"round 0: success {sum(successes)}/{args.episodes}, final {np.mean(final):.3f}")
        for round_ in range(1, args.dagger + 1):
            first = collect["first_env_seed"] + recorded + 50 * (round_ - 1)
            labels = relabel(policy, backend, args, params, operator, range(first, first + 50))
            inputs += labels[0]
            targets += labels[1]
            policy = fit(inputs, targets, args)
            successes, final, gained = score(policy, backend, args, params, operator)
            print(
                f"DAgger round {round_} ({sum(map(len, inputs))} steps): success "
                f"{sum(successes)}/{args.episodes}, final coverage {np.mean(final):.3f}"
            )
    low, high = wilson_interval(sum(successes), args.episodes)
    print(
        f"{args.observation} BC ({'clean' if args.clean else 'default'} operator"
        f"{', with its mode' if args.operator_mode else ''}"
        f"{f', {args.dagger} DAgger rounds' if args.dagger else ''}"
        f"{f', chunks of {args.chunk}' if args.chunk > 1 else ''}"
        f"{', flow head' if args.head == 'flow' else ''}"
        f"{f', {args.encoder} encoder' if args.pixels else ''}"
        f"{f', shifts of {args.shift} px' if args.shift else ''}): success "
        f"{sum(successes)}/{args.episodes} (Wilson 95 % {low:.2f}-{high:.2f}), final coverage "
        f"{np.mean(final):.3f}, improvement {np.mean(gained):+.3f}; "
        f"{time.perf_counter() - started:.0f} s"
    )
    run = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "seeds": list(range(args.first_seed, args.first_seed + args.episodes)),
        "success": successes,
        "final": final,
        "gained": gained,
    }
    if args.out:
        args.out.write_text(json.dumps(run, indent=1))
    if args.against:
        paired(run, json.loads(args.against.read_text()))


if __name__ == "__main__":
    main()
