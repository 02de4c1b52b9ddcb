"""Robot evaluation: intervals against published values, the closed loop on a scripted
fake robot (exact aggregates, initial coverage and improvement, proprioception handed to
the policy, safety on failure, clipping), paired comparisons, videos and figures."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest

from fog_pipeline.core.envs import RobotBackend, StepResult
from fog_pipeline.core.evaluation import (
    EPISODE_COLUMNS,
    BackendPolicyAdapter,
    EpisodeError,
    RandomPolicy,
    aggregate,
    comparison_figure,
    comparisons,
    evaluate_policy,
    mean_interval,
    paired_difference,
    paired_differences,
    sample_efficiency_figure,
    sample_efficiency_row,
    student_t_quantile,
    wilson_interval,
    write_gif,
)

# --------------------------------------------------------------------------------------
# Intervals


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:857-872, Table II, method 3 (score
        # interval without continuity correction).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        # The usual small-sample examples (e.g. Brown, Cai & DasGupta 2001; any Wilson
        # calculator such as VassarStats): 0, 5 and 10 successes out of 10.
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
    ],
)
def test_wilson_interval_matches_published_values(successes, trials, low, high):
    got = wilson_interval(successes, trials)
    assert got == pytest.approx((low, high), abs=5e-5)


def test_wilson_interval_is_exact_at_the_ends():
    assert wilson_interval(0, 7)[0] == 0.0
    assert wilson_interval(7, 7)[1] == 1.0


@pytest.mark.parametrize(
    ("successes", "trials", "message"),
    [(0, 0, "at least one trial"), (3, 2, "successes must be in"), (-1, 5, "successes")],
)
def test_wilson_interval_rejects_impossible_counts(successes, trials, message):
    with pytest.raises(ValueError, match=message):
        wilson_interval(successes, trials)


def test_wilson_interval_rejects_bad_confidence():
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 2, confidence=95)


@pytest.mark.parametrize(
    ("confidence", "df", "expected"),
    # Two-sided critical values from any Student-t table.
    [
        (0.95, 1, 12.706),
        (0.95, 2, 4.303),
        (0.95, 4, 2.776),
        (0.95, 9, 2.262),
        (0.95, 29, 2.045),
        (0.95, 120, 1.980),
        (0.99, 1, 63.657),
        (0.99, 9, 3.250),
    ],
)
def test_student_t_quantile_matches_tables(confidence, df, expected):
    assert student_t_quantile(confidence, df) == pytest.approx(expected, abs=5e-4)


def test_mean_interval_uses_student_t():
    # 1..5: mean 3, s = 1.5811, t(0.95, 4) = 2.776 -> 3 +- 1.9632
    assert mean_interval([1, 2, 3, 4, 5]) == pytest.approx((3.0, 1.0368, 4.9632), abs=1e-4)
    assert mean_interval([0.4, 0.4, 0.4]) == pytest.approx((0.4, 0.4, 0.4))


def test_mean_interval_is_clipped_to_the_measure_range():
    mean, low, high = mean_interval([0.0, 0.0, 0.0, 0.6], bounds=(0.0, 1.0))
    assert (mean, low) == (pytest.approx(0.15), 0.0)
    assert high == pytest.approx(0.15 + 3.182 * 0.3 / 2, abs=1e-3)  # t(0.95, 3) = 3.182
    with pytest.raises(ValueError, match=r"lie in \(0.0, 1.0\)"):
        mean_interval([0.5, 1.2], bounds=(0.0, 1.0))


def test_mean_interval_degenerate_and_invalid():
    assert mean_interval([0.7]) == (0.7, 0.7, 0.7)
    with pytest.raises(ValueError, match="no values"):
        mean_interval([])
    with pytest.raises(ValueError, match="finite"):
        mean_interval([0.1, np.nan])


# --------------------------------------------------------------------------------------
# Closed loop on a scripted fake robot


class ScriptedRobot(RobotBackend):
    """Reward 0.1 * step, except 1.0 and success at ``success_step[seed]`` (ends it).

    The scene of ``seed`` starts at coverage ``initial[seed]`` (default 0), which
    ``read_reward()`` reports right after the reset; after a step it reports that step's
    label. Its proprioception is a counter, ``(steps since reset, 100 + seed)``. Frame t is
    one flat colour (so a GIF stores it losslessly); it logs every executed action and
    every stop.
    """

    name = "scripted"
    task = "test"
    fps = 5.0
    action_low = np.array([-1.0, -0.5], dtype=np.float32)
    action_high = np.array([1.0, 0.5], dtype=np.float32)
    action_meaning = "anything"
    frame_shape = (4, 4, 3)
    max_episode_steps = 20
    state_names = ("t", "scene")

    def __init__(
        self,
        success_step: dict[int, int] | None = None,
        initial: dict[int, float] | None = None,
    ):
        self.success_step = success_step or {}
        self.initial = initial or {}
        self.executed: list[np.ndarray] = []
        self.events: list[str] = []
        self.states: list[np.ndarray] = []  # every state read_state() returned

    def _frame(self) -> np.ndarray:
        return np.full(self.frame_shape, (20 * self._t, 255 - 20 * self._t, 7), np.uint8)

    def _reset(self, seed):
        self._seed, self._t = seed, 0
        self._label = self.initial.get(seed, 0.0)
        self.events.append("reset")
        return self._frame()

    def _step(self, action):
        self.executed.append(action.copy())
        self.events.append("step")
        self._t += 1
        done = self.success_step.get(self._seed) == self._t
        self._label = 1.0 if done else 0.1 * self._t
        return StepResult(self._frame(), self._label, done, done, False)

    def read_reward(self) -> float:
        return self._label

    def read_state(self) -> np.ndarray:
        state = np.array([self._t, 100 + self._seed], dtype=np.float32)
        self.states.append(state)
        return state

    def stop(self):
        self.events.append("stop")


class ConstantPolicy:
    name = "constant"

    def __init__(self, action=(0.0, 0.0), fail_at_call: int | None = None):
        self.action = np.asarray(action, dtype=np.float32)
        self.fail_at_call = fail_at_call
        self.calls = 0
        self.frames: list[np.ndarray] = []
        self.states: list[np.ndarray] = []

    def reset(self):
        pass

    def act(self, frame, state):
        self.calls += 1
        self.frames.append(frame)
        self.states.append(state)
        if self.calls == self.fail_at_call:
            raise ZeroDivisionError("policy bug")
        return self.action


def test_scripted_outcomes_give_exact_aggregates():
    robot = ScriptedRobot(success_step={1: 2, 3: 4}, initial={1: 0.3, 2: 0.1, 4: 0.7})
    result = evaluate_policy(ConstantPolicy(), robot, [1, 2, 3, 4], max_steps=5, progress=False)
    episodes = result.episodes
    assert list(episodes.columns) == list(EPISODE_COLUMNS)
    assert episodes["policy"].tolist() == ["constant"] * 4
    assert episodes["seed"].tolist() == [1, 2, 3, 4]
    assert episodes["success"].tolist() == [True, False, True, False]
    assert episodes["length"].tolist() == [2, 5, 4, 5]  # success ends early; else time limit
    assert episodes["return"].tolist() == pytest.approx([1.1, 1.5, 1.6, 1.5])
    # The label read right after each reset, not the first step's label (0.1).
    assert episodes["initial_coverage"].tolist() == pytest.approx([0.3, 0.1, 0.0, 0.7])
    assert episodes["max_coverage"].tolist() == pytest.approx([1.0, 0.5, 1.0, 0.5])
    assert episodes["final_coverage"].tolist() == pytest.approx([1.0, 0.5, 1.0, 0.5])
    # max - initial; seed 4 started above anything the policy reached
    assert episodes["improvement"].tolist() == pytest.approx([0.7, 0.4, 1.0, -0.2])
    assert robot.events.count("stop") == 4  # the robot is stopped after every episode

    summary = aggregate(episodes)
    assert list(summary) == ["constant"]
    entry = summary["constant"]
    assert list(entry)[:8] == [
        "episodes",
        "successes",
        "success_rate",
        "success_rate_low",
        "success_rate_high",
        "final_coverage_mean",
        "final_coverage_low",
        "final_coverage_high",
    ], "success first, then final coverage"
    assert entry["episodes"] == 4 and entry["successes"] == 2
    assert entry["success_rate"] == 0.5
    assert (entry["success_rate_low"], entry["success_rate_high"]) == pytest.approx(
        wilson_interval(2, 4)
    )
    assert entry["max_coverage_mean"] == pytest.approx(0.75)
    # 0.75 +- t(0.95, 3) * 0.2887 / 2 = 0.75 +- 0.4594, clipped at coverage 1
    assert (entry["max_coverage_low"], entry["max_coverage_high"]) == pytest.approx(
        (0.2906, 1.0), abs=1e-4
    )
    assert entry["final_coverage_mean"] == pytest.approx(0.75)
    assert entry["initial_coverage_mean"] == pytest.approx(0.275)
    # improvements 0.7, 0.4, 1.0, -0.2: mean 0.475, s = 0.5123, t(0.95, 3) = 3.182
    assert entry["improvement_mean"] == pytest.approx(0.475)
    assert (entry["improvement_low"], entry["improvement_high"]) == pytest.approx(
        (0.475 - 0.8152, 1.0), abs=1e-3
    )
    assert entry["return_mean"] == pytest.approx(1.425)
    assert entry["length_mean"] == 4.0


def test_policy_sees_the_state_read_after_each_frame():
    robot = ScriptedRobot(success_step={8: 3})
    policy = ConstantPolicy()
    evaluate_policy(policy, robot, [7, 8], max_steps=4, progress=False)
    # seed 7: time limit (4 actions); seed 8: success after 3 actions
    expected = [[t, 107] for t in range(4)] + [[t, 108] for t in range(3)]
    np.testing.assert_array_equal(np.stack(policy.states), expected)
    # Exactly the arrays the robot returned, in order: one read after the reset and one
    # after every step (the read after an episode's last step has no action to inform).
    assert len(robot.states) == 5 + 4
    sent = robot.states[0:4] + robot.states[5:8]
    assert all(got is read for got, read in zip(policy.states, sent, strict=True))


def test_state_of_the_wrong_shape_stops_the_robot():
    class Liar(ScriptedRobot):
        def read_state(self):
            return np.zeros(3, dtype=np.float32)  # state_names has two channels

    robot = Liar()
    with pytest.raises(EpisodeError, match=r"read_state\(\) returned shape \(3,\)"):
        evaluate_policy(ConstantPolicy(), robot, [0], max_steps=2, progress=False)
    assert robot.executed == [] and robot.events[-1] == "stop"


def _row(policy, seed, success, final, initial=0.0, peak=None):
    peak = final if peak is None else peak
    return {
        "policy": policy,
        "seed": seed,
        "success": success,
        "initial_coverage": initial,
        "final_coverage": final,
        "max_coverage": peak,
        "improvement": peak - initial,
        "return": 3 * final,
        "length": 3,
    }


def test_aggregate_keeps_policies_apart_in_order():
    rows = [
        _row("b", 0, True, 1.0),
        _row("a", 0, False, 0.0),
        _row("b", 1, False, 0.2),
        _row("a", 1, False, 0.1),
    ]
    summary = aggregate(pd.DataFrame(rows))
    assert list(summary) == ["b", "a"]
    assert summary["b"]["successes"] == 1 and summary["a"]["successes"] == 0
    assert summary["a"]["success_rate_low"] == 0.0
    assert summary["a"]["final_coverage_mean"] == pytest.approx(0.05)


def _table(rows):
    return pd.DataFrame([_row(p, s, False, c / 2, initial=0.05, peak=c) for p, s, c in rows])


def test_paired_differences_are_scene_by_scene():
    # b beats random by exactly 0.1 on every scene, though the scenes differ widely: the
    # per-policy intervals overlap, the paired one is a point.
    table = _table(
        [
            ("random", 0, 0.1),
            ("b", 0, 0.2),
            ("random", 1, 0.5),
            ("b", 1, 0.6),
            ("random", 2, 0.3),
            ("b", 2, 0.4),
            ("a", 0, 0.1),
            ("a", 1, 0.3),
            ("a", 2, 0.5),
        ]
    )
    paired = paired_differences(table, "random")
    assert list(paired) == ["b", "a"]
    b = paired["b"]
    assert b["scenes"] == 3
    assert (b["max_coverage_diff_mean"], b["max_coverage_diff_low"]) == pytest.approx((0.1, 0.1))
    assert b["final_coverage_diff_mean"] == pytest.approx(0.05)
    assert b["improvement_diff_mean"] == pytest.approx(0.1)
    assert b["success_diff_mean"] == 0.0
    # a - random = 0, -0.2, +0.2: mean 0, t(0.95, 2) * 0.2 / sqrt(3) = 0.4968 either side
    a = paired["a"]
    assert a["max_coverage_diff_mean"] == pytest.approx(0.0, abs=1e-12)
    assert a["max_coverage_diff_high"] == pytest.approx(0.4968, abs=1e-4)
    assert paired_differences(table, "nobody") == {}
    with pytest.raises(ValueError, match="'c' ran on other scenes than 'random'"):
        paired_differences(pd.concat([table, _table([("c", 0, 0.1)])]), "random")


def test_paired_success_and_final_coverage_match_hand_computation():
    # Five scenes. fog succeeds on 0, 1, 3; ppo on 1 only: per-scene success gaps
    # 1, 0, 0, 1, 0.
    fog = [(True, 1.0, 0.2), (True, 1.0, 0.1), (False, 0.6, 0.3), (True, 1.0, 0.0)]
    fog.append((False, 0.4, 0.2))
    ppo = [(False, 0.5, 0.2), (True, 1.0, 0.1), (False, 0.3, 0.3), (False, 0.6, 0.0)]
    ppo.append((False, 0.4, 0.2))
    table = pd.DataFrame(
        [
            _row(name, seed, ok, final, initial)
            for name, runs in (("fog", fog), ("ppo", ppo))
            for seed, (ok, final, initial) in enumerate(runs)
        ]
    )
    entry = paired_difference(table, "fog", "ppo")
    assert entry["scenes"] == 5
    # success gaps 1, 0, 0, 1, 0: mean 0.4, s = sqrt(0.3) = 0.5477, t(0.95, 4) = 2.7764
    # -> 0.4 +- 2.7764 * 0.5477 / sqrt(5) = 0.4 +- 0.6801
    assert entry["success_diff_mean"] == pytest.approx(0.4)
    assert entry["success_diff_low"] == pytest.approx(0.4 - 0.6801, abs=1e-4)
    assert entry["success_diff_high"] == pytest.approx(1.0)  # 1.0801 clipped
    # final-coverage gaps 0.5, 0, 0.3, 0.4, 0: mean 0.24, s = 0.2302
    # -> 0.24 +- 2.7764 * 0.2302 / sqrt(5) = 0.24 +- 0.2858
    assert entry["final_coverage_diff_mean"] == pytest.approx(0.24)
    assert (entry["final_coverage_diff_low"], entry["final_coverage_diff_high"]) == (
        pytest.approx((0.24 - 0.2858, 0.24 + 0.2858), abs=1e-4)
    )
    # the same scenes start alike: the improvement gap is the max-coverage gap
    assert entry["improvement_diff_mean"] == pytest.approx(entry["max_coverage_diff_mean"])
    # the other way round: the negation
    back = paired_difference(table, "ppo", "fog")
    assert back["success_diff_mean"] == pytest.approx(-0.4)
    assert back["success_diff_high"] == pytest.approx(-0.4 + 0.6801, abs=1e-4)


def test_comparisons_leave_out_pairs_that_did_not_run():
    table = _table(
        [
            (name, seed, 0.1 * (k + 1))
            for k, name in enumerate(["fog", "random", "ppo"])
            for seed in (0, 1)
        ]
    )
    fog_versus = comparisons(table, "fog", ["fog_initial", "ppo", "random", "fog"])
    assert list(fog_versus) == ["ppo", "random"]  # fog_initial never ran; not fog itself
    assert fog_versus["ppo"]["max_coverage_diff_mean"] == pytest.approx(0.1 - 0.3)
    assert fog_versus["random"]["max_coverage_diff_mean"] == pytest.approx(0.1 - 0.2)
    assert paired_difference(table, "fog", "fog_initial") is None
    assert paired_difference(table, "fog_anchor_only", "random") is None
    assert comparisons(table, "nobody", ["ppo", "random"]) == {}


def test_aggregate_names_missing_columns():
    with pytest.raises(ValueError, match="lacks columns.*success"):
        aggregate(pd.DataFrame({"policy": ["a"], "seed": [0]}))


def test_failing_policy_leaves_robot_stopped_and_names_the_episode():
    robot = ScriptedRobot()
    policy = ConstantPolicy(fail_at_call=5)  # seed 11: calls 1-3; seed 7: call 5 = step 1 (from 0)
    with pytest.raises(EpisodeError, match=r"'constant'.*episode 1 \(scene seed 7\) at step 1"):
        evaluate_policy(policy, robot, [11, 7, 8], max_steps=3, progress=False)
    assert robot.events[-1] == "stop"
    assert robot.events.count("reset") == 2, "no episode may start after a failure"


def test_error_keeps_its_cause():
    with pytest.raises(EpisodeError) as caught:
        evaluate_policy(
            ConstantPolicy(fail_at_call=1), ScriptedRobot(), [0], max_steps=3, progress=False
        )
    assert isinstance(caught.value.__cause__, ZeroDivisionError)


def test_nonfinite_action_is_refused_and_robot_stopped():
    robot = ScriptedRobot()
    with pytest.raises(EpisodeError, match="seed 3.*non-finite"):
        evaluate_policy(ConstantPolicy([np.nan, 0.0]), robot, [3], max_steps=3, progress=False)
    assert robot.executed == [] and robot.events[-1] == "stop"


def test_out_of_bounds_actions_are_clipped():
    robot = ScriptedRobot()
    evaluate_policy(ConstantPolicy([5.0, -5.0]), robot, [0], max_steps=3, progress=False)
    np.testing.assert_array_equal(np.stack(robot.executed), [[1.0, -0.5]] * 3)


class UnclippedRobot(ScriptedRobot):
    """A backend that overrides step() and forgets the safety clipping."""

    def step(self, action):
        self._steps_taken += 1
        result = self._step(np.asarray(action, dtype=np.float32))
        result.info["action"] = np.asarray(action)
        return result


def test_backend_that_skips_clipping_is_stopped():
    robot = UnclippedRobot()
    with pytest.raises(EpisodeError, match="outside its bounds"):
        evaluate_policy(ConstantPolicy([3.0, 0.0]), robot, [0], max_steps=3, progress=False)
    assert robot.events[-1] == "stop" and len(robot.executed) == 1


def test_time_limit_beyond_the_backend_limit_is_refused():
    with pytest.raises(ValueError, match="max_episode_steps=20"):
        evaluate_policy(ConstantPolicy(), ScriptedRobot(), [0], max_steps=21, progress=False)


def test_seeds_must_be_given_and_distinct():
    with pytest.raises(ValueError, match="no scene seed"):
        evaluate_policy(ConstantPolicy(), ScriptedRobot(), [], max_steps=2, progress=False)
    with pytest.raises(ValueError, match="distinct"):
        evaluate_policy(ConstantPolicy(), ScriptedRobot(), [1, 1], max_steps=2, progress=False)


def test_videos_are_written_as_readable_upscaled_gifs(tmp_path):
    robot = ScriptedRobot(success_step={5: 3})
    result = evaluate_policy(
        ConstantPolicy(), robot, [5, 6, 7], max_steps=4, video_episodes=2, progress=False
    )
    assert [(v.policy, v.seed) for v in result.videos] == [("constant", 5), ("constant", 6)]
    first = result.videos[0]
    assert first.frames.shape == (4, 4, 4, 3)  # the first frame, then one per step
    assert first.fps == 5.0

    path = write_gif(tmp_path / "constant_0.gif", first, display_size=32)
    shown = iio.imread(path, index=None)
    assert shown.shape == (4, 32, 32, 3)  # 4 x 4 upscaled 8x
    np.testing.assert_array_equal(shown, first.frames.repeat(8, axis=1).repeat(8, axis=2))
    assert iio.immeta(path)["duration"] == 200  # ms per frame at 5 Hz


def test_random_policy_is_reproducible_and_in_bounds():
    low, high = np.array([-1.0, -0.5]), np.array([1.0, 0.5])

    def episodes(seed):
        policy = RandomPolicy(low, high, seed)
        runs = []
        for _ in range(2):
            policy.reset()
            runs.append(np.stack([policy.act(None, np.zeros(0, np.float32)) for _ in range(50)]))
        return runs

    first, again, other = episodes(0), episodes(0), episodes(1)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], first[1]), "each episode draws fresh actions"
    assert not np.array_equal(first[0], other[0])
    actions = np.concatenate(first)
    assert np.all(actions >= low) and np.all(actions <= high)


def test_recording_policy_adapter_passes_the_backend_and_a_fresh_rng():
    seen = []

    class RecordingStylePolicy:
        def reset(self, rng):
            self.rng = rng

        def act(self, frame, backend):
            seen.append((backend, self.rng.random()))
            return np.zeros(2, dtype=np.float32)

    robot = ScriptedRobot()
    adapter = BackendPolicyAdapter(RecordingStylePolicy(), robot, seed=0, name="data_policy")
    result = evaluate_policy(adapter, robot, [0, 1], max_steps=1, progress=False)
    assert result.episodes["policy"].tolist() == ["data_policy"] * 2
    assert [backend for backend, _ in seen] == [robot, robot]
    assert seen[0][1] != seen[1][1], "each episode gets its own random stream"


def test_data_collection_policy_runs_on_pusht():
    from fog_pipeline.core.envs.pusht import PushTBackend, PushTConfig
    from fog_pipeline.core.episodes.recording import ExplorationPolicy

    with PushTBackend(PushTConfig(width=16, height=16)) as robot:
        adapter = BackendPolicyAdapter(ExplorationPolicy(), robot, seed=0, name="data_policy")
        first = evaluate_policy(adapter, robot, [100], max_steps=5, progress=False).episodes
        again = evaluate_policy(
            BackendPolicyAdapter(ExplorationPolicy(), robot, seed=0, name="data_policy"),
            robot,
            [100],
            max_steps=5,
            progress=False,
        ).episodes
    assert first["length"].tolist() == [5]
    pd.testing.assert_frame_equal(first, again)


# --------------------------------------------------------------------------------------
# Figures


def _summary():
    return {
        "random": {
            "episodes": 10,
            "successes": 0,
            "success_rate": 0.0,
            "success_rate_low": 0.0,
            "success_rate_high": 0.2775,
            "final_coverage_mean": 0.05,
            "final_coverage_low": 0.01,
            "final_coverage_high": 0.09,
            "max_coverage_mean": 0.1,
            "max_coverage_low": 0.05,
            "max_coverage_high": 0.15,
            "initial_coverage_mean": 0.02,
        },
        "data_policy": {
            "episodes": 10,
            "successes": 5,
            "success_rate": 0.5,
            "success_rate_low": 0.2366,
            "success_rate_high": 0.7634,
            "final_coverage_mean": 0.55,
            "final_coverage_low": 0.35,
            "final_coverage_high": 0.75,
            "max_coverage_mean": 0.6,
            "max_coverage_low": 0.4,
            "max_coverage_high": 0.8,
            "initial_coverage_mean": 0.02,
        },
    }


def test_comparison_figure_has_one_bar_per_policy(tmp_path):
    figure = comparison_figure(_summary())
    success_ax, coverage_ax = figure.axes
    labels = [t.get_text() for t in success_ax.get_xticklabels()]
    assert labels == ["random\n0/10", "data_policy\n5/10"]
    assert [bar.get_height() for bar in success_ax.patches] == [0.0, 0.5]
    # final coverage as bars; initial and max coverage as markers
    assert [bar.get_height() for bar in coverage_ax.patches] == [0.05, 0.55]
    markers = {line.get_label(): line.get_ydata().tolist() for line in coverage_ax.get_lines()}
    assert markers["max (secondary)"] == [0.1, 0.6]
    assert markers["initial"] == [0.02, 0.02]
    figure.savefig(tmp_path / "comparison.png")
    assert (tmp_path / "comparison.png").stat().st_size > 0


def test_sample_efficiency_figure_draws_one_line_per_family():
    entry = _summary()["data_policy"]
    rows = [
        sample_efficiency_row("fog", 20_000, entry),
        sample_efficiency_row("fog", 10_000, _summary()["random"]),
        sample_efficiency_row("ppo", 50_000, entry),
    ]
    figure = sample_efficiency_figure(rows, log_x=True)
    success_ax, coverage_ax = figure.axes
    lines = {line.get_label(): line for line in success_ax.get_lines()}
    assert set(lines) == {"fog", "ppo"}
    np.testing.assert_array_equal(lines["fog"].get_xdata(), [10_000, 20_000])  # sorted
    np.testing.assert_array_equal(lines["fog"].get_ydata(), [0.0, 0.5])
    coverage = coverage_ax.get_lines()
    assert len(coverage) == 2
    np.testing.assert_array_equal(coverage[0].get_ydata(), [0.05, 0.55])  # final coverage
    assert rows[0]["max_coverage_mean"] == 0.6  # kept as an extra column
    assert success_ax.get_xscale() == "log"


def test_sample_efficiency_figure_names_missing_columns():
    with pytest.raises(ValueError, match="lacks columns.*transitions"):
        sample_efficiency_figure([{"family": "fog", "success_rate": 0.1}])
