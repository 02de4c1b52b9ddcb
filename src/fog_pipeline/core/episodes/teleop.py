"""A scripted teleoperator stand-in for Push-T that solves the task, with noise mixed in.

Push-T's table has no friction (the package sets the space's damping to 0, so the block
loses all its velocity every physics substep): the block moves only while the pusher
drives it, like a free body struck at the contact. Pushing a contact point along a
direction ``d`` therefore moves the block by the minimum-norm impulse that makes the
contact point follow the pusher (sticking contact, or sliding on the friction cone's edge
where sticking would need more friction than the package's mu = 1). That gives, for each
candidate contact (a point on the T's outline and a push direction), the block's pose
change per unit of pusher travel, computed once in the block's frame.

Every step the policy compares those responses with the pose error to the goal
(centre-of-mass offset, and angle error times the block's radius of gyration) and keeps
pushing the contact whose response points most directly at the goal pose, switching only
when another one is clearly better (each switch costs a walk around the block). A push
goes as far as that response reduces the error, so pushes shorten by themselves near the
goal. The walk to a new contact goes straight when the block is not in the way and around
the block on a circle otherwise.

For data collection, each episode draws a noise level for the actions and, now and then,
the operator lets go for a short stretch of smooth random motion, then recovers from
whatever it did to the block: the logs then contain mistakes and recoveries too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from fog_pipeline.core.config import STRICT_KEYS
from fog_pipeline.core.envs.robot import RobotBackend


@dataclass
class TeleoperatorConfig:
    """The Push-T teleoperator stand-in (``PushTTeleoperator``). Distances in table units."""

    __pydantic_config__ = STRICT_KEYS

    # Turns the angle error into table units; the T's radius of gyration (55) weighs a
    # radian like the distance a point of the T typically moves when it turns by one.
    angle_weight: Annotated[float, Field(gt=0.0)] = 55.0
    # Switch contacts only for a response this much better in cosine to the error (a
    # switch costs a walk around the block), and prefer near contacts by this much per
    # 100 units of walk.
    switch_margin: Annotated[float, Field(ge=0.0, le=2.0)] = 0.15
    walk_penalty: Annotated[float, Field(ge=0.0)] = 0.1
    # Side pushes at this angle to the edge normal (inside the 45 degree friction cone)
    # give the planner pushes that turn and translate in other proportions.
    side_push_degrees: Annotated[float, Field(ge=0.0, lt=45.0)] = 25.0
    # Where the pusher waits before a push, off the edge, and how far it keeps from the
    # block while walking (the pusher's radius of 15 comes on top of both).
    approach_gap: Annotated[float, Field(gt=0.0)] = 8.0
    walk_margin: Annotated[float, Field(ge=0.0)] = 4.0
    # The walk around the block follows this circle about its centre of mass (the T's
    # farthest corner is 77 from it, the pusher's radius 15).
    orbit_radius: Annotated[float, Field(gt=92.0)] = 105.0
    # Lead of the pusher's target over the contact while pushing: the push speed. The PD
    # controller lags by about two steps, so the block moves about half of it per step.
    push_lead: Annotated[float, Field(gt=0.0)] = 30.0
    # Each episode draws a sloppiness s ~ U(0, 1), so that the logs range from clean to
    # clumsy operators: Gaussian noise of standard deviation s * action_noise on every
    # planned action (action units), and lapses at a per-step rate of 2 * s * the rates
    # below (the rates are the means over episodes).
    action_noise: Annotated[float, Field(ge=0.0)] = 0.15
    # Lapse "wander": smooth random motion (an Ornstein-Uhlenbeck process on the action),
    # covering pusher motions the planner never makes.
    wander_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    wander_reversion: Annotated[float, Field(gt=0.0, le=1.0)] = 0.15
    wander_sigma: Annotated[float, Field(ge=0.0)] = 0.3
    # Lapse "mistake": the planner pushes a random contact instead of the best one, which
    # knocks the block off its course; the recovery afterwards is in the logs too.
    mistake_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    # Length of a lapse in steps (a mistake's includes the walk to its contact).
    min_lapse_steps: Annotated[int, Field(ge=1)] = 5
    max_lapse_steps: Annotated[int, Field(ge=1)] = 20
    # Per-episode push speed: push_lead times a factor drawn from 1 +- push_lead_spread,
    # so that the logs show the block moving at several speeds.
    push_lead_spread: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.3

    def __post_init__(self) -> None:
        if self.min_lapse_steps > self.max_lapse_steps:
            raise ValueError(
                f"min_lapse_steps ({self.min_lapse_steps}) must not exceed "
                f"max_lapse_steps ({self.max_lapse_steps})"
            )


_PUSHER_RADIUS = 15.0  # the package's add_circle radius
_BLOCK_MASS = 1.0  # the package's add_tee: mass 1, moment 3000 about the centre of mass
_BLOCK_MOMENT = 3000.0
_FRICTION = 1.0  # pusher and block friction 1 each (pymunk multiplies them)
_COM = np.array([0.0, 45.0])  # centre of mass in the block frame (mean of the two boxes)
# The two boxes of the T in the block frame: centre and half extents.
_BOXES = np.array([[0.0, 15.0, 60.0, 15.0], [0.0, 75.0, 15.0, 45.0]])
# The outline's edges (start, end, outward normal), counter-clockwise.
_EDGES = [
    ((-60.0, 0.0), (60.0, 0.0), (0.0, -1.0)),
    ((60.0, 0.0), (60.0, 30.0), (1.0, 0.0)),
    ((60.0, 30.0), (15.0, 30.0), (0.0, 1.0)),
    ((15.0, 30.0), (15.0, 120.0), (1.0, 0.0)),
    ((15.0, 120.0), (-15.0, 120.0), (0.0, 1.0)),
    ((-15.0, 120.0), (-15.0, 30.0), (-1.0, 0.0)),
    ((-15.0, 30.0), (-60.0, 30.0), (0.0, 1.0)),
    ((-60.0, 30.0), (-60.0, 0.0), (-1.0, 0.0)),
]
# Where the pusher's centre can go: the package's walls are segments of radius 2 at 5
# and 506, and the pusher's radius is 15.
_REACH_LOW, _REACH_HIGH = 5.0 + 2.0 + _PUSHER_RADIUS, 506.0 - 2.0 - _PUSHER_RADIUS
_CONTACT_SPACING = 7.5  # between candidate contact points along an edge
_CORNER_INSET = 4.0  # keeps contacts off the corners, where the normal is ambiguous
_ARRIVED = 4.0  # the pusher is at its waiting point: start the push
# Farther than this beyond the waiting point's distance from the contact, the push has
# lost its contact (slid off, or the block turned away): walk back to it.
_LOST_CONTACT = 10.0
_ORBIT_STEP = np.pi / 4  # angle about the block's centre of mass per orbit waypoint


def _wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _block_distance(points: np.ndarray) -> np.ndarray:
    """Distance from points (N, 2) in the block frame to the T (0 inside)."""
    offsets = np.abs(points[:, None, :] - _BOXES[None, :, :2]) - _BOXES[None, :, 2:]
    return np.hypot(*np.maximum(offsets, 0.0).transpose(2, 0, 1)).min(axis=1)


def _response(point: np.ndarray, normal: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Block motion (vx, vy, omega) in the block frame per unit pusher travel ``direction``.

    The impulse J at the contact makes the contact point follow the pusher (v + w x r = d)
    if it lies in the friction cone; otherwise the contact slides and J sits on the cone's
    edge, with the normal component of the contact velocity still matching.
    """
    r = point - _COM
    cross = np.array([[r[1] ** 2, -r[0] * r[1]], [-r[0] * r[1], r[0] ** 2]])
    compliance = np.eye(2) / _BLOCK_MASS + cross / _BLOCK_MOMENT
    inward, tangent = -normal, np.array([-normal[1], normal[0]])
    impulse = np.linalg.solve(compliance, direction)
    along, across = impulse @ inward, impulse @ tangent
    if abs(across) > _FRICTION * along:
        edge = inward + np.sign(across) * _FRICTION * tangent
        impulse = edge * (direction @ inward) / ((compliance @ edge) @ inward)
    velocity = impulse / _BLOCK_MASS
    spin = (r[0] * impulse[1] - r[1] * impulse[0]) / _BLOCK_MOMENT
    return np.array([velocity[0], velocity[1], spin])


def _candidates(side_push: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Contact points, outward normals, push directions and responses in the block frame.

    Only points the pusher can touch without overlapping another part of the T (the
    inner corners under the bar keep it off the stem and vice versa).
    """
    points, normals, directions, responses = [], [], [], []
    for start, end, normal in _EDGES:
        start, end, normal = np.array(start), np.array(end), np.array(normal)
        length = float(np.hypot(*(end - start)))
        count = int((length - 2 * _CORNER_INSET) // _CONTACT_SPACING) + 1
        for fraction in np.linspace(_CORNER_INSET, length - _CORNER_INSET, count) / length:
            point = start + fraction * (end - start)
            centre = point + normal * _PUSHER_RADIUS
            if _block_distance(centre[None])[0] < _PUSHER_RADIUS - 0.5:
                continue
            for turn in (-side_push, 0.0, side_push):
                direction = _rotation(turn) @ -normal
                points.append(point)
                normals.append(normal)
                directions.append(direction)
                responses.append(_response(point, normal, direction))
    return np.array(points), np.array(normals), np.array(directions), np.array(responses)


class PushTTeleoperator:
    """Solves Push-T from the simulator's true state, with per-episode noise (see module).

    It reads ``backend.privileged_state()``: it stands in for a human teleoperator who
    sees the scene, and only the data-collection stage may use it.
    """

    def __init__(self, config: TeleoperatorConfig | None = None) -> None:
        self.config = config or TeleoperatorConfig()
        settings = ", ".join(
            f"{f.name}={getattr(self.config, f.name)}" for f in dataclasses.fields(self.config)
        )
        self.description = f"PushTTeleoperator(contact-planning pusher + noise; {settings})"
        points, normals, directions, responses = _candidates(
            np.radians(self.config.side_push_degrees)
        )
        self._points, self._normals, self._directions = points, normals, directions
        # Responses in error units: (vx, vy, angle_weight * omega).
        self._responses = responses * np.array([1.0, 1.0, self.config.angle_weight])
        self._rng: np.random.Generator | None = None

    def reset(self, rng: np.random.Generator) -> None:
        cfg = self.config
        self._rng = rng
        sloppiness = rng.random()
        self._noise = sloppiness * cfg.action_noise
        self._wander_rate = 2.0 * sloppiness * cfg.wander_rate
        self._mistake_rate = 2.0 * sloppiness * cfg.mistake_rate
        spread = cfg.push_lead_spread
        self._push_lead = cfg.push_lead * rng.uniform(1.0 - spread, 1.0 + spread)
        self._contact: int | None = None
        self._pushing = False
        self._lapse: str | None = None  # None, "wander" or "mistake"
        self._lapse_left = 0
        self._action = np.zeros(2)

    def act(self, frame: np.ndarray, backend: RobotBackend) -> np.ndarray:
        if self._rng is None:
            raise RuntimeError("PushTTeleoperator: call reset(rng) before act()")
        cfg, rng = self.config, self._rng
        state = backend.privileged_state()
        if self._lapse is None:
            self._maybe_lapse()
        if self._lapse == "wander":
            action = (1.0 - cfg.wander_reversion) * self._action + rng.normal(
                0.0, cfg.wander_sigma, size=2
            )
        else:
            goal = self._planned_target(state)
            # Move the commanded target onto the planned one (as far as one step allows).
            action = (goal - state["target_xy"]) / float(backend.config.max_step)
            action = action + rng.normal(0.0, self._noise, size=2)
        if self._lapse is not None:
            self._lapse_left -= 1
            if self._lapse_left == 0:
                # Replan from scratch: the block may have moved anywhere meanwhile.
                self._lapse, self._contact, self._pushing = None, None, False
        self._action = np.clip(action, -1.0, 1.0)
        return self._action.astype(np.float32)

    def _maybe_lapse(self) -> None:
        cfg, rng = self.config, self._rng
        draw = rng.random()
        if draw < self._wander_rate:
            self._lapse = "wander"
        elif draw < self._wander_rate + self._mistake_rate:
            self._lapse = "mistake"
            self._contact = int(rng.integers(len(self._points)))
            self._pushing = False
        else:
            return
        self._lapse_left = int(rng.integers(cfg.min_lapse_steps, cfg.max_lapse_steps + 1))

    def _planned_target(self, state: dict[str, Any]) -> np.ndarray:
        cfg = self.config
        angle = state["block_angle"]
        rotation = _rotation(angle)
        com = state["block_centroid_xy"]
        origin = state["block_xy"]
        agent = state["agent_xy"]
        error = np.append(
            state["goal_centroid_xy"] - com,
            cfg.angle_weight * _wrap(state["goal_pose"][2] - angle),
        )
        # World-frame responses: rotate the translation part by the block's angle.
        world = self._responses.copy()
        world[:, :2] = self._responses[:, :2] @ rotation.T
        norms = np.linalg.norm(world, axis=1)
        cosine = world @ error / (norms * max(float(np.linalg.norm(error)), 1e-9))

        approach = (
            origin
            + (self._points + self._normals * (_PUSHER_RADIUS + cfg.approach_gap)) @ rotation.T
        )
        walk = np.linalg.norm(approach - agent, axis=1)
        score = cosine - cfg.walk_penalty * walk / 100.0
        # The walls keep the pusher off waiting points next to them.
        reachable = np.all((approach >= _REACH_LOW) & (approach <= _REACH_HIGH), axis=1)
        score[~reachable] = -np.inf
        best = int(np.argmax(score))
        current = self._contact
        # A mistake keeps its random contact to the end of the lapse.
        if self._lapse != "mistake" and (
            current is None or score[best] > score[current] + cfg.switch_margin
        ):
            self._contact, self._pushing = best, False
        index = self._contact

        contact = origin + rotation @ self._points[index]
        normal = rotation @ self._normals[index]
        direction = rotation @ self._directions[index]
        touching = contact + normal * _PUSHER_RADIUS
        lost = _PUSHER_RADIUS + cfg.approach_gap + _LOST_CONTACT
        if self._pushing and np.linalg.norm(agent - touching) > lost:
            self._pushing = False
        if not self._pushing and np.linalg.norm(agent - approach[index]) < _ARRIVED:
            self._pushing = True
        if self._pushing:
            if self._lapse == "mistake":
                return touching + direction * self._push_lead
            # The travel that brings the error closest to zero along this response (least
            # squares), so pushes shorten by themselves near the goal.
            travel = max(float(world[index] @ error) / float(norms[index]) ** 2, 0.0)
            return touching + direction * min(travel, self._push_lead)
        return self._walk_target(agent, approach[index], origin, rotation, com)

    def _walk_target(
        self,
        agent: np.ndarray,
        goal: np.ndarray,
        origin: np.ndarray,
        rotation: np.ndarray,
        com: np.ndarray,
    ) -> np.ndarray:
        """Straight to ``goal`` if the block is not in the way, else around it."""
        cfg = self.config
        samples = agent + np.linspace(0.0, 1.0, 12)[:, None] * (goal - agent)
        distances = _block_distance((samples - origin) @ rotation)
        # Blocked if the path comes nearer than the margin, or than its ends (the pusher
        # may start in contact, and a waiting point in the T's inner corner is nearer).
        ends = min(distances[0], distances[-1]) - 1.0
        if distances.min() > min(_PUSHER_RADIUS + cfg.walk_margin, ends):
            return goal
        here = np.arctan2(*(agent - com)[::-1])
        there = np.arctan2(*(goal - com)[::-1])
        turn = np.sign(_wrap(there - here)) or 1.0
        heading = here + turn * _ORBIT_STEP
        waypoint = com + cfg.orbit_radius * np.array([np.cos(heading), np.sin(heading)])
        return np.clip(waypoint, _REACH_LOW, _REACH_HIGH)
