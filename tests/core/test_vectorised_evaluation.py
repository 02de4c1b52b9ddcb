"""Several simulated robots at once (a SimulatorPool, one process each): the same results
as one robot at a time, episode for episode (random, the scripted collector, a learned
bundle, a policy without act_batch), with episodes of different lengths and idle robots
at the end; a failure in one robot, in the policy, a dead worker or Ctrl-C stops every
robot, names the scene seed and leaves no process behind; a backend that is not a
simulator runs alone (see test_remote_backend.py for a real remote robot)."""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flaky_pusht import FlakyPushT
from tiny_world import tiny_bundle

from fog_pipeline.core.envs import make_backend
from fog_pipeline.core.envs.pusht import PushTBackend, PushTConfig
from fog_pipeline.core.episodes.teleop import PushTTeleoperator
from fog_pipeline.core.evaluation import (
    BackendPolicyAdapter,
    EpisodeError,
    RandomPolicy,
    SimulatorPool,
    evaluate_policy,
    evaluation_robots,
)
from fog_pipeline.core.policy.bundle import DeployedPolicy

SIZE = 16
ROBOTS = 3
LOW, HIGH = np.full(2, -1.0, np.float32), np.full(2, 1.0, np.float32)


def _serial_robot() -> PushTBackend:
    return PushTBackend(PushTConfig(width=SIZE, height=SIZE))


@pytest.fixture(scope="module")
def pool():
    with SimulatorPool(
        functools.partial(make_backend, "pusht", width=SIZE, height=SIZE), ROBOTS
    ) as pool:
        yield pool


def _bundle() -> DeployedPolicy:
    return tiny_bundle(LOW, HIGH, PushTBackend.state_names, size=SIZE)


class BatchSpy:
    """Delegates to a batch policy and records how many robots each call acted for."""

    def __init__(self, policy):
        self.policy, self.name, self.calls = policy, "spy", []

    def reset(self):
        self.policy.reset()

    def act(self, frame, state):
        return self.policy.act(frame, state)

    def reset_robot(self, robot, episode):
        self.policy.reset_robot(robot, episode)

    def act_batch(self, robots, frames, states):
        self.calls.append(tuple(robots))
        return self.policy.act_batch(robots, frames, states)


class TowardsCentre:
    """A plain policy (reset/act only): drive the pusher to the table's centre."""

    name = "centre"

    def reset(self):
        pass

    def act(self, frame, state):
        return np.clip(-2.0 * state[:2], -1.0, 1.0).astype(np.float32)


def _assert_same(serial, vectorised, seeds):
    assert vectorised.episodes["seed"].tolist() == list(seeds), "rows in seed order"
    pd.testing.assert_frame_equal(vectorised.episodes, serial.episodes, check_exact=True)
    assert [v.seed for v in vectorised.videos] == [v.seed for v in serial.videos]
    for got, expected in zip(vectorised.videos, serial.videos, strict=True):
        np.testing.assert_array_equal(got.frames, expected.frames)
        assert got.fps == expected.fps


@pytest.mark.parametrize("kind", ["random", "bundle"])
def test_batch_policies_give_the_serial_results(pool, kind):
    # 5 episodes on 3 robots: two rounds, one robot idle in the second.
    seeds, max_steps = [7, 100_003, 21, 4, 58], 25

    def make():
        policy = RandomPolicy(LOW, HIGH, seed=3) if kind == "random" else _bundle()
        return BatchSpy(policy)

    with _serial_robot() as robot:
        serial = evaluate_policy(make(), robot, seeds, max_steps, video_episodes=2, progress=False)
    spy = make()
    vectorised = evaluate_policy(spy, pool, seeds, max_steps, video_episodes=2, progress=False)
    _assert_same(serial, vectorised, seeds)
    # Robots 0 and 1 act in one call, robot 2 in another; one group's robot idles at the
    # end (which, depends on who finished first).
    assert {robot for call in spy.calls for robot in call} == {0, 1, 2}
    assert set(spy.calls) <= {(0, 1), (0,), (1,), (2,)} and (0, 1) in spy.calls
    assert sum(len(call) for call in spy.calls) == len(seeds) * max_steps


def test_data_collection_policy_gives_the_serial_results_over_uneven_episodes(pool):
    # The scripted collector succeeds on some scenes within the limit: episodes end at
    # different steps and robots take the next seed while the others go on.
    seeds, max_steps = [32, 36, 11, 29, 5, 100], 120
    with _serial_robot() as robot:
        adapter = BackendPolicyAdapter(PushTTeleoperator(), robot, seed=0, name="data_policy")
        serial = evaluate_policy(adapter, robot, seeds, max_steps, video_episodes=3, progress=False)
        adapter = BackendPolicyAdapter(PushTTeleoperator(), robot, seed=0, name="data_policy")
        vectorised = evaluate_policy(
            adapter, pool, seeds, max_steps, video_episodes=3, progress=False
        )
    lengths = serial.episodes["length"]
    assert serial.episodes["success"].any() and lengths.nunique() >= 3
    _assert_same(serial, vectorised, seeds)


def test_policy_without_act_batch_runs_on_one_robot_at_a_time(pool, caplog):
    seeds = [1, 2, 3]
    with _serial_robot() as robot:
        serial = evaluate_policy(TowardsCentre(), robot, seeds, 10, progress=False)
    with caplog.at_level(logging.INFO):
        vectorised = evaluate_policy(TowardsCentre(), pool, seeds, 10, progress=False)
    assert "has no act_batch(): evaluating it on one robot at a time" in caplog.text
    _assert_same(serial, vectorised, seeds)


# --------------------------------------------------------------------------------------
# Failures


def _no_new_processes(before: set) -> bool:
    return set(multiprocessing.active_children()) <= before


def _last_events(log: Path) -> dict[str, str]:
    last = {}
    for line in log.read_text().splitlines():
        pid, event = line.split(" ", 1)
        last[pid] = event
    return last


class FailingAt(BatchSpy):
    """Random actions, then ``error`` at the ``call``-th act_batch for robot 0."""

    def __init__(self, call: int, error: BaseException):
        super().__init__(RandomPolicy(LOW, HIGH, seed=0))
        self.call, self.error = call, error

    def act_batch(self, robots, frames, states):
        if 0 in robots and sum(0 in call for call in self.calls) + 1 == self.call:
            raise self.error
        return super().act_batch(robots, frames, states)


@pytest.mark.parametrize("how", ["raise", "exit"])
def test_a_failing_robot_stops_every_robot_and_names_its_seed(tmp_path, how):
    log = tmp_path / "robots.log"
    make = functools.partial(FlakyPushT, str(log), fail_seed=42, at_step=4, how=how)
    before = set(multiprocessing.active_children())  # the module's pool
    with SimulatorPool(make, 2) as pool:
        policy = RandomPolicy(LOW, HIGH, seed=0)
        cause = "OSError: motor driver fault" if how == "raise" else "exited \\(code 3\\)"
        with pytest.raises(
            EpisodeError, match=rf"episode 1 \(scene seed 42\) at step 3: .*{cause}"
        ):
            evaluate_policy(policy, pool, [41, 42, 43, 44], 10, progress=False)
        if how == "raise":
            stopped = _last_events(log)
            assert len(stopped) == 2 and set(stopped.values()) == {"stop"}, stopped
        else:  # the other robot was stopped; the dead one holds nothing
            assert "stop" in _last_events(log).values()
    assert _no_new_processes(before)


def test_a_failing_policy_stops_every_robot_and_names_the_seeds(tmp_path):
    log = tmp_path / "robots.log"
    make = functools.partial(FlakyPushT, str(log), fail_seed=-1, at_step=0)
    before = set(multiprocessing.active_children())  # the module's pool
    with SimulatorPool(make, 3) as pool:
        # Robots 0 and 1 act in one call, robot 2 in another: it fails at the second
        # step of robots 0 and 1 (robot 2 may be stepping meanwhile).
        policy = FailingAt(call=2, error=ZeroDivisionError("policy bug"))
        with pytest.raises(EpisodeError) as caught:
            evaluate_policy(policy, pool, [5, 6, 7, 8], 10, progress=False)
        message = str(caught.value)
        assert (
            "episodes (acting for all at once) 0 (scene seed 5) at step 1, 1 (scene seed 6)"
            in message
        )
        assert "All 3 robots were stopped" in message
        assert isinstance(caught.value.__cause__, ZeroDivisionError)
        stopped = _last_events(log)
        assert len(stopped) == 3 and set(stopped.values()) == {"stop"}, stopped
    assert _no_new_processes(before)


def test_ctrl_c_stops_every_robot(tmp_path):
    log = tmp_path / "robots.log"
    make = functools.partial(FlakyPushT, str(log), fail_seed=-1, at_step=0)
    before = set(multiprocessing.active_children())  # the module's pool
    with SimulatorPool(make, 2) as pool:
        # Ctrl-C (SIGINT to this process; the workers ignore it) while the robots step.
        ctrl_c = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
        ctrl_c.start()
        policy = RandomPolicy(LOW, HIGH, seed=0)
        # Far more work than 0.5 s on any machine, so the signal lands mid-evaluation.
        with pytest.raises(KeyboardInterrupt):
            evaluate_policy(policy, pool, list(range(5, 105)), 300, progress=False)
        ctrl_c.join()
        assert set(_last_events(log).values()) == {"stop"}
        # Nothing is left pending: the pool goes on.
        assert len(evaluate_policy(TowardsCentre(), pool, [5], 2, progress=False).episodes) == 1
    assert _no_new_processes(before)


def test_a_robot_that_is_not_a_simulator_runs_alone(caplog):
    with _serial_robot() as robot:
        robot.is_simulator = False  # as a real robot's backend is
        make = functools.partial(make_backend, "pusht", width=SIZE, height=SIZE)
        before = set(multiprocessing.active_children())
        with caplog.at_level(logging.INFO), evaluation_robots(robot, make, 3) as robots:
            assert robots is robot
            assert _no_new_processes(before)
        assert "'pusht' is not a simulator: evaluating on it alone" in caplog.text
        with evaluation_robots(robot, make, 1) as robots:
            assert robots is robot
