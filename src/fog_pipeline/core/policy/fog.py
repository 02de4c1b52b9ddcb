"""FoG: short-horizon max-entropy actor-critic with the decoupled first-order gradient.

One iteration, for N imagined environments and a horizon H:

1. Forward. From the current latent states s_t, the actor samples a_t (reparameterised);
   the global model G steps every environment under ``no_grad``; the surrogate's posterior
   encodes the new observation (frame and proprioception) into the forward state
   s^fwd_{t+1}; G's reward model gives r^fwd_t, its dense task-progress label.
2. Backward. The surrogate's transition ŝ_{t+1} = S(s_t, a_t) is evaluated with autograd
   and the swap keeps G's value with S's gradient: s_{t+1} = ŝ + stop_grad(s^fwd - ŝ). The
   surrogate's reward head reads that swapped state (the true next state, as DMO
   recomputes the reward there), and r_t = r̂ + stop_grad(r^fwd - r̂) keeps G's value.
   A predicted success is absorbing: its remaining return is that of staying at the top
   reward, γ/(1-γ) more. Environments that end (success or time limit) restart from real
   contexts with detached states: the gradient graph is cut there.
3. The actor ascends J = 1/(N H) Σ [Σ_t γ^t (r_t + α Ĥ_t) + γ^H V(s_H)], with Ĥ_t the
   tanh-corrected entropy estimate, offset by the target entropy H̄ and scaled by the span
   up to the uniform policy's entropy (so Ĥ is about 0 at H̄ and 1 at uniform). Its
   gradient norm is clipped (the pre-clip norm is logged).
4. The critic ensemble regresses TD(λ) targets computed on the forward trajectory with
   a Polyak target network (min over members), for several minibatch epochs.
5. α follows the entropy towards H̄; the learning rates decay linearly.
6. The transitions G produced go into a replay buffer (every environment whose sequence
   did not restart before its last step), and the surrogate takes a few gradient steps
   on it: it must follow G where the policy goes, not only where the recorded data was.
7. Optionally (:mod:`.prior`), the actor's loss adds ``prior.weight`` times the negative
   log-likelihood of recorded actions, which keeps the policy near the data where G is
   trustworthy. The recorded steps' latent features are recomputed with the updated
   surrogate at every checkpoint (``checkpoint_every`` iterations), so the anchor reads
   the latent the actor acts on, and a resumed run reads the features an uninterrupted
   one does.

``reinforcement_weight: 0`` switches FoG's objective off and keeps everything else (the
same start, anchor, rollouts and surrogate updates): the ablation that measures what the
first-order gradient itself adds.

``gradient_source="global"`` runs the same loop with full backpropagation through G's
sampler and reward model (the expensive reference that FoG replaces); the values are the
same, only the gradient path differs, so the comparison is fair.

The environment is any batched imagined environment with the
:class:`~fog_pipeline.core.world_model.env.WorldModelEnv` interface; the surrogate is any
model with the RSSM's ``observe`` / ``encode_next`` / ``swapped_step`` and
``config.proprio_dim``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.policy.actor import Actor
from fog_pipeline.core.policy.critic import CriticEnsemble, TargetCritic
from fog_pipeline.core.policy.prior import BehaviourPriorConfig, Demonstrations, behaviour_nll
from fog_pipeline.core.policy.returns import decoupled, td_lambda
from fog_pipeline.core.surrogate.rssm import LatentState
from fog_pipeline.core.surrogate.training import SequenceReplay, SurrogateTrainer
from fog_pipeline.core.training_state import (
    ResumableTrainer,
    StateLoader,
    fingerprint,
    run_training_loop,
    tensor_digest,
)
from fog_pipeline.core.world_model.frames import to_uint8
from fog_pipeline.core.world_model.training import NonFiniteLossError

GradientSource = Literal["surrogate", "global"]


@dataclass
class FoGConfig:
    """The optimisation loop (``policy.fog``)."""

    __pydantic_config__ = STRICT_KEYS

    iterations: Annotated[int, Field(ge=1)] = 100
    num_envs: Annotated[int, Field(ge=1)] = 16  # N imagined environments
    horizon: Annotated[int, Field(ge=1)] = 16  # H steps per iteration
    gradient_source: GradientSource = "surrogate"
    # Weight of FoG's objective in the actor loss (0: the anchor-only ablation).
    reinforcement_weight: Annotated[float, Field(ge=0)] = 1.0
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.99
    lam: Annotated[float, Field(ge=0, le=1)] = 0.95
    actor_lr: Annotated[float, Field(gt=0)] = 2e-3
    critic_lr: Annotated[float, Field(gt=0)] = 5e-4
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (
        0.7,
        0.95,
    )
    lr_final_factor: Annotated[float, Field(ge=0, le=1)] = 0.0  # linear decay to this share
    actor_grad_clip: Annotated[float, Field(gt=0)] = 1.0
    alpha_init: Annotated[float, Field(gt=0)] = 0.05
    alpha_lr: Annotated[float, Field(ge=0)] = 5e-3
    # Target entropy per action dimension (H̄ = target_entropy_per_dim * |A|).
    target_entropy_per_dim: float = -0.5
    critic_epochs: Annotated[int, Field(ge=1)] = 4
    critic_minibatches: Annotated[int, Field(ge=1)] = 4
    critic_tau: Annotated[float, Field(gt=0, le=1)] = 0.2
    # Online surrogate updates: gradient steps per iteration on the replay buffer of G's
    # transitions (0 turns them off), their batch size, and the buffer's size in sequences.
    surrogate_updates: Annotated[int, Field(ge=0)] = 2
    surrogate_batch_size: Annotated[int, Field(ge=1)] = 16
    replay_capacity: Annotated[int, Field(ge=1)] = 256
    # Policy snapshots at evenly spaced world-model transition counts (sample efficiency).
    snapshots: Annotated[int, Field(ge=0)] = 4
    checkpoint_every: Annotated[int, Field(ge=1)] = 10
    log_every: Annotated[int, Field(ge=1)] = 1

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if self.snapshots > self.iterations:
            raise ValueError(
                f"snapshots ({self.snapshots}) cannot exceed iterations ({self.iterations})"
            )

    @property
    def steps(self) -> int:  # the name the shared training loop reads
        return self.iterations

    @property
    def transitions_per_iteration(self) -> int:
        return self.num_envs * self.horizon

    @property
    def total_transitions(self) -> int:
        return self.iterations * self.transitions_per_iteration

    def snapshot_iterations(self) -> list[int]:
        """Iteration counts after which a snapshot is kept (the last one is the end)."""
        return [round(self.iterations * (k + 1) / self.snapshots) for k in range(self.snapshots)]


class FoGTrainer(ResumableTrainer):
    label = "policy training"

    def __init__(
        self,
        env: Any,
        surrogate: torch.nn.Module,
        actor: Actor,
        critic: CriticEnsemble,
        config: FoGConfig,
        seed: int,
        device: torch.device | str = "cpu",
        surrogate_trainer: SurrogateTrainer | None = None,
        fingerprint_extra: dict[str, Any] | None = None,
        prior: BehaviourPriorConfig | None = None,
        demonstrations: Demonstrations | None = None,
        refresh_demonstrations: Callable[[], Demonstrations] | None = None,
    ) -> None:
        if env.num_envs != config.num_envs:
            raise ValueError(
                f"env has {env.num_envs} environments, config.num_envs is {config.num_envs}"
            )
        self.env, self.surrogate, self.actor, self.critic = env, surrogate, actor, critic
        self.config, self.device = config, torch.device(device)
        self.surrogate_trainer = surrogate_trainer
        self.prior = prior or BehaviourPriorConfig()
        if self.prior.weight > 0 and demonstrations is None:
            raise ValueError("a behaviour prior weight needs demonstrations to anchor to")
        if config.reinforcement_weight == 0 and self.prior.weight == 0:
            raise ValueError(
                "policy.fog.reinforcement_weight 0 (the anchor-only ablation) needs an anchor: "
                "set policy.prior.weight > 0"
            )
        self.demonstrations = demonstrations
        self.refresh_demonstrations = refresh_demonstrations
        self.target = TargetCritic(critic, config.critic_tau)
        self.actor_optimizer = torch.optim.Adam(
            actor.parameters(), lr=config.actor_lr, betas=config.betas
        )
        self.critic_optimizer = torch.optim.Adam(
            critic.parameters(), lr=config.critic_lr, betas=config.betas
        )
        self.log_alpha = torch.tensor(
            math.log(config.alpha_init), device=self.device, requires_grad=True
        )
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=config.alpha_lr)
        action_dim = actor.config.action_dim
        self.target_entropy = config.target_entropy_per_dim * action_dim
        # Entropy of the uniform policy on [-1, 1]^A: the top of the normalised bonus.
        self.entropy_span = action_dim * math.log(2.0) - self.target_entropy
        if self.entropy_span <= 0:
            raise ValueError(
                f"target entropy {self.target_entropy:.2f} must be below the uniform policy's "
                f"{action_dim * math.log(2.0):.2f}: lower target_entropy_per_dim"
            )
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.replay = SequenceReplay(config.replay_capacity, seed=seed + 1)
        self.step = 0
        self.state: LatentState | None = None
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}
        self.fingerprint = fingerprint(
            {
                "fog": config,
                "actor": actor.config,
                "critic": critic.config,
                "surrogate": tensor_digest(surrogate.state_dict().values()),
                "seed": seed,
                **({"prior": self.prior} if self.prior.enabled else {}),
                **(fingerprint_extra or {}),
            }
        )

    # -- bookkeeping -------------------------------------------------------------------
    @property
    def transitions(self) -> int:
        """World-model transitions consumed so far."""
        return self.step * self.config.transitions_per_iteration

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.detach().exp())

    def _set_lr(self) -> None:
        config = self.config
        progress = self.step / config.iterations
        factor = 1.0 - (1.0 - config.lr_final_factor) * progress
        for optimizer, lr in (
            (self.actor_optimizer, config.actor_lr),
            (self.critic_optimizer, config.critic_lr),
        ):
            for group in optimizer.param_groups:
                group["lr"] = lr * factor

    # -- the imagined rollout ------------------------------------------------------------
    @property
    def _uses_proprio(self) -> bool:
        return self.surrogate.config.proprio_dim > 0

    @torch.no_grad()
    def _context_states(self, mask: torch.Tensor | None = None) -> LatentState:
        """Latent states filtered over the environments' context windows (no gradient)."""
        frames, actions, states = self.env.frames, self.env.past_actions, self.env.states
        if mask is not None:
            frames, actions, states = frames[mask], actions[mask], states[mask]
        proprio = states if self._uses_proprio else None
        posteriors, _ = self.surrogate.observe(frames, actions, sample=False, proprio=proprio)
        state = posteriors.at(-1)
        return LatentState(h=state.h, z=state.z)

    def _transition(
        self, state: LatentState, action: torch.Tensor
    ) -> tuple[Any, LatentState, torch.Tensor]:
        """One environment step: (G's step output, next latent state, reward), differentiable
        along the configured gradient path."""
        if self.config.gradient_source == "global":
            out = self.env.step(action, differentiable=True)
            proprio = out.state if self._uses_proprio else None
            return out, self.surrogate.encode_next(state, action, out.frame, proprio), out.reward
        out = self.env.step(action.detach())
        proprio = out.state if self._uses_proprio else None
        next_state, predicted_reward = self.surrogate.swapped_step(
            state, action, out.frame, proprio
        )
        return out, next_state, decoupled(out.reward, predicted_reward)

    def rollout(self) -> dict[str, Any]:
        """H imagined steps from the current states; the actor objective keeps its graph."""
        config, env = self.config, self.env
        if self.state is None:
            env.reset()
            self.state = self._context_states()
        state = self.state.detach()
        # Cut the graph at the iteration boundary (with full BPTT the environment's
        # context frames and actions still carry the last iteration's graph).
        env.frames, env.past_actions = env.frames.detach(), env.past_actions.detach()
        alpha = self.log_alpha.exp().detach()
        objective = torch.zeros(env.num_envs, device=self.device)
        discount = torch.ones(env.num_envs, device=self.device)
        features, critic_rewards, dones, entropies, rewards = [], [], [], [], []
        frames, proprio, actions, terminals = [], [], [], []
        # A restart after step t < H - 1 puts two episodes in one recorded sequence; one
        # after the last step does not (the sequence ends where its episode does).
        split = torch.zeros(env.num_envs, dtype=torch.bool, device=self.device)
        # A success is absorbing: staying at the top reward (1) from the next step on.
        absorbing_value = config.gamma / (1.0 - config.gamma) if config.gamma < 1 else 0.0
        for t in range(config.horizon):
            feature = state.feature()
            features.append(feature.detach())
            frames.append(env.observation.detach())
            proprio.append(env.state.detach())
            action, log_prob = self.actor.sample(feature, self.generator)
            actions.append(action.detach())
            entropy = -log_prob
            bonus = alpha * (entropy - self.target_entropy) / self.entropy_span
            out, next_state, reward = self._transition(state, action)
            terminated, done = out.terminated, out.terminated | out.truncated
            reward = reward + torch.where(terminated, absorbing_value, 0.0)
            objective = objective + discount * (reward + bonus)
            discount = discount * config.gamma
            critic_reward = (reward + bonus).detach()
            if done.any():
                # Time limits bootstrap from the state reached; a success's remaining
                # return is already in its reward.
                bootstrap = out.truncated & ~terminated
                value = self.critic.value(next_state.feature())
                objective = objective + torch.where(bootstrap, discount * value, 0.0)
                target_value = self.target.value(next_state.feature().detach())
                critic_reward = critic_reward + torch.where(
                    bootstrap, config.gamma * target_value, 0.0
                )
                discount = torch.where(done, 1.0, discount)
                env.reset(done)
                next_state = self._restart(done, next_state)
                if t < config.horizon - 1:
                    split |= done
            critic_rewards.append(critic_reward)
            dones.append(done.float())
            entropies.append(entropy.detach())
            rewards.append(out.reward.detach())
            terminals.append(terminated.float())
            state = next_state
        objective = objective + discount * self.critic.value(state.feature())
        features.append(state.feature().detach())
        self.state = state.detach()
        return {
            "objective": objective,
            "features": torch.stack(features),  # (H+1, N, F)
            "critic_rewards": torch.stack(critic_rewards),  # (H, N)
            "dones": torch.stack(dones),
            "entropies": torch.stack(entropies),
            "rewards": torch.stack(rewards),  # (H, N) G's progress labels
            "terminals": torch.stack(terminals),  # (H, N) predicted successes
            "frames": torch.stack(frames, dim=1),  # (N, H, C, H, W)
            "proprio": torch.stack(proprio, dim=1),  # (N, H, P)
            "actions": torch.stack(actions, dim=1),  # (N, H, A)
            "split": split,  # (N,) the sequence holds a restart before its last step
        }

    def _restart(self, mask: torch.Tensor, state: LatentState) -> LatentState:
        """``state`` with the restarted environments' entries replaced by fresh context
        states; out-of-place, so those entries carry no gradient to what came before."""
        fresh = self._context_states(mask)
        index = torch.nonzero(mask).flatten()
        return LatentState(
            h=state.h.index_put((index,), fresh.h), z=state.z.index_put((index,), fresh.z)
        )

    # -- updates -------------------------------------------------------------------------
    def _critic_update(self, features: torch.Tensor, targets: torch.Tensor) -> float:
        config = self.config
        inputs, goals = features.flatten(0, 1), targets.flatten()
        size = len(goals)
        batch = max(1, size // config.critic_minibatches)
        losses = []
        for _ in range(config.critic_epochs):
            order = torch.as_tensor(self.rng.permutation(size), device=self.device)
            for begin in range(0, size, batch):
                index = order[begin : begin + batch]
                loss = (self.critic(inputs[index]) - goals[index]).square().mean(1).sum()
                self.critic_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.critic_optimizer.step()
                losses.append(loss.item())
        self.target.update(self.critic)
        return float(np.mean(losses))

    def _surrogate_update(self, rollout: dict[str, Any]) -> dict[str, float]:
        """Store G's sequences that hold one episode each; train S on replay."""
        if self.surrogate_trainer is None or self.config.surrogate_updates == 0:
            return {}
        kept = ~rollout["split"]
        if kept.any():
            self.replay.add(
                {
                    "frames": torch.from_numpy(to_uint8(rollout["frames"][kept])),
                    "proprio": rollout["proprio"][kept].cpu(),
                    "actions": rollout["actions"][kept].cpu(),
                    "rewards": rollout["rewards"].T[kept].cpu(),
                    "continues": 1.0 - rollout["terminals"].T[kept].cpu(),
                }
            )
        if len(self.replay) == 0:
            return {}
        self.surrogate.requires_grad_(True)
        losses = [
            self.surrogate_trainer.train_step(self.replay.sample(self.config.surrogate_batch_size))
            for _ in range(self.config.surrogate_updates)
        ]
        self.surrogate.eval().requires_grad_(False)
        return {
            "surrogate_loss": float(np.mean([m["loss"] for m in losses])),
            "replay_sequences": float(len(self.replay)),
        }

    def _refresh_due(self) -> bool:
        """Whether the anchor's features must be recomputed now (see the module docstring)."""
        return (
            self.refresh_demonstrations is not None
            and self.prior.weight > 0
            and self.surrogate_trainer is not None
            and self.config.surrogate_updates > 0
            and self.step > 0
            and self.step % self.config.checkpoint_every == 0
        )

    def train_iteration(self) -> dict[str, float]:
        config = self.config
        self._set_lr()
        self.surrogate.eval().requires_grad_(False)
        rollout = self.rollout()
        actor_loss = -rollout["objective"].mean() / config.horizon
        total = config.reinforcement_weight * actor_loss
        metrics = {"actor_loss": actor_loss.item()}
        if self.prior.weight > 0:
            batch = self.demonstrations.sample(self.prior.batch_size, self.generator)
            nll = behaviour_nll(self.actor, batch)
            total = total + self.prior.weight * nll
            metrics["behaviour_nll"] = nll.item()
        self.actor_optimizer.zero_grad(set_to_none=True)
        total.backward()
        metrics["actor_grad_norm"] = float(
            torch.nn.utils.clip_grad_norm_(self.actor.parameters(), config.actor_grad_clip)
        )
        bad = [name for name, value in metrics.items() if not math.isfinite(value)]
        if bad:
            self.actor_optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(
                f"Non-finite {', '.join(bad)} at policy iteration {self.step}. The last "
                "checkpoint is intact; lower policy.fog.actor_lr or actor_grad_clip and rerun."
            )
        self.actor_optimizer.step()
        with torch.no_grad():
            values = self.target.value(rollout["features"])
        targets = td_lambda(
            rollout["critic_rewards"], values, rollout["dones"], config.gamma, config.lam
        )
        metrics["critic_loss"] = self._critic_update(rollout["features"][:-1], targets)
        entropy = rollout["entropies"].mean()
        alpha_loss = self.log_alpha * (entropy - self.target_entropy)
        self.alpha_optimizer.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_optimizer.step()
        metrics.update(self._surrogate_update(rollout))
        self.step += 1
        if self._refresh_due():
            self.demonstrations = self.refresh_demonstrations()
        metrics.update(
            imagined_return=float(rollout["objective"].mean().detach()),
            imagined_reward=float(rollout["rewards"].mean()),
            entropy=float(entropy),
            alpha=self.alpha,
            value=float(values.mean()),
            transitions=float(self.transitions),
            actor_lr=self.actor_optimizer.param_groups[0]["lr"],
        )
        if self.step in config.snapshot_iterations():
            self.snapshots[self.transitions] = self.policy_state()
        return metrics

    def policy_state(self) -> dict[str, torch.Tensor]:
        """What a deployable snapshot needs: the actor and the (online-updated) surrogate."""
        state = {f"actor/{k}": v.detach().clone() for k, v in self.actor.state_dict().items()}
        state.update(
            {f"surrogate/{k}": v.detach().clone() for k, v in self.surrogate.state_dict().items()}
        )
        return state

    # -- checkpoints ---------------------------------------------------------------------
    def _extra_state(self) -> dict[str, torch.Tensor]:
        """Everything outside the modules and optimisers that an exact resume needs."""
        env = self.env
        extra = {
            "log_alpha": self.log_alpha.detach(),
            "env_frames": env.frames,
            "env_past_actions": env.past_actions,
            "env_steps": env.steps,
            "env_generator": env.generator.get_state(),
            "replay_generator": self.replay.generator.get_state(),
            "replay_counts": torch.tensor(
                [self.replay.size, self.replay.cursor, self.replay.added]
            ),
        }
        if self.state is not None:
            extra.update(latent_h=self.state.h, latent_z=self.state.z)
        extra.update({f"replay/{k}": v for k, v in self.replay.storage.items()})
        if self.surrogate_trainer is not None:
            extra["surrogate_generator"] = self.surrogate_trainer.generator.get_state()
            extra["surrogate_step"] = torch.tensor(self.surrogate_trainer.step)
        return extra

    def _load_extra_state(self, extra: dict[str, torch.Tensor]) -> None:
        env = self.env
        with torch.no_grad():
            self.log_alpha.copy_(extra["log_alpha"])
        env.frames = extra["env_frames"].to(env.frames.device)
        env.past_actions = extra["env_past_actions"].to(env.past_actions.device)
        env.steps = extra["env_steps"].to(env.steps.device)
        env.generator.set_state(extra["env_generator"].cpu())
        self.replay.generator.set_state(extra["replay_generator"].cpu())
        self.replay.size, self.replay.cursor, self.replay.added = (
            int(v) for v in extra["replay_counts"]
        )
        self.replay.storage = {
            k[len("replay/") :]: v.to(self.replay.device)
            for k, v in extra.items()
            if k.startswith("replay/")
        }
        if "latent_h" in extra:
            self.state = LatentState(h=extra["latent_h"], z=extra["latent_z"])
        if self.surrogate_trainer is not None:
            self.surrogate_trainer.generator.set_state(extra["surrogate_generator"].cpu())
            self.surrogate_trainer.step = int(extra["surrogate_step"])

    def _checkpoint_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers = {
            "actor_optim": self.actor_optimizer,
            "critic_optim": self.critic_optimizer,
            "alpha_optim": self.alpha_optimizer,
        }
        if self.surrogate_trainer is not None:
            optimizers["surrogate_optim"] = self.surrogate_trainer.optimizer
        return optimizers

    def _checkpoint_modules(self) -> dict[str, dict[str, torch.Tensor]]:
        modules = {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "target": self.target.network.state_dict(),
            "surrogate": self.surrogate.state_dict(),
            "extra": self._extra_state(),
        }
        modules.update({f"snapshot_{t}": state for t, state in self.snapshots.items()})
        return modules

    def _checkpoint_loaders(self) -> dict[str, StateLoader]:
        def keep_snapshot(transitions: int) -> StateLoader:
            def load(state: dict[str, torch.Tensor]) -> None:
                if state:
                    self.snapshots[transitions] = state

            return load

        loaders: dict[str, StateLoader] = {
            "actor": self.actor.load_state_dict,
            "critic": self.critic.load_state_dict,
            "target": self.target.network.load_state_dict,
            "surrogate": self.surrogate.load_state_dict,
            "extra": self._load_extra_state,
        }
        for iteration in self.config.snapshot_iterations():
            transitions = iteration * self.config.transitions_per_iteration
            loaders[f"snapshot_{transitions}"] = keep_snapshot(transitions)
        return loaders

    def _after_resume(self) -> None:
        if self._refresh_due():
            self.demonstrations = self.refresh_demonstrations()

    def fit(
        self,
        checkpoint_dir: str | Path | None = None,
        on_metrics: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        """Train for ``config.iterations``; resume from and checkpoint to ``checkpoint_dir``."""
        self._resume_for_fit(checkpoint_dir)
        run_training_loop(
            self,
            self.train_iteration,
            None if checkpoint_dir is None else Path(checkpoint_dir),
            on_metrics,
            "policy (FoG)" if self.config.gradient_source == "surrogate" else "policy (BPTT)",
            lambda m: {
                "return": f"{m['imagined_return']:.3f}",
                "reward": f"{m['imagined_reward']:.3f}",
            },
        )
