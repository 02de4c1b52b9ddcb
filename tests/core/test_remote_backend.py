"""A robot on another computer: Push-T served by ``python -m fog_pipeline.serve_robot`` in a
subprocess on loopback gives the in-process results exactly (evaluation and recording),
refuses malformed requests and bad actions and keeps serving, stops the robot when its
client dies, goes silent or loses the link, and a client without a server fails fast
naming the address."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import multiprocessing
import os
import pickle
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import zmq  # noqa: E402
from robot_server import STARTUP_S, Server, end_server, free_port, start_server  # noqa: E402

from fog_pipeline.core.envs import make_backend  # noqa: E402
from fog_pipeline.core.envs.pusht import PushTBackend, PushTConfig  # noqa: E402
from fog_pipeline.core.envs.remote import (  # noqa: E402
    PROTOCOL_VERSION,
    ProtocolError,
    RemoteBackend,
    RemoteConfig,
    RobotTimeoutError,
    decode,
    encode,
)
from fog_pipeline.core.episodes.recording import record_episode  # noqa: E402
from fog_pipeline.core.episodes.teleop import PushTTeleoperator  # noqa: E402
from fog_pipeline.core.evaluation.robots import evaluation_robots  # noqa: E402
from fog_pipeline.core.evaluation.rollout import RandomPolicy, evaluate_policy  # noqa: E402

WIDTH = HEIGHT = 16
IDLE_TIMEOUT_S = 2.0
REPLY_S = 5.0  # a bound on one reply


def _client(port: int, **options: float) -> RemoteBackend:
    options = {"request_timeout_s": REPLY_S, "connect_timeout_s": REPLY_S} | options
    return RemoteBackend(RemoteConfig(host="127.0.0.1", port=port, **options))


def _start_server(log: Path) -> Server:
    return start_server(log, WIDTH, HEIGHT, IDLE_TIMEOUT_S)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = _start_server(tmp_path_factory.mktemp("robot_server") / "server.log")
    try:
        yield server
    finally:
        end_server(server)


class RawClient:
    """Speaks the wire format by hand, to send what RemoteBackend never would."""

    client_id = "raw-test"

    def __init__(self, port: int) -> None:
        self.socket = zmq.Context.instance().socket(zmq.REQ)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(f"tcp://127.0.0.1:{port}")

    def send(self, *frames: bytes) -> dict:
        self.socket.send_multipart(frames)
        assert self.socket.poll(int(REPLY_S * 1000)), "the server did not reply"
        return decode(self.socket.recv_multipart())

    def call(self, method: str, **args) -> dict:
        header = {"protocol": PROTOCOL_VERSION, "client": self.client_id, "method": method}
        return self.send(*encode(header | {"args": args}))

    def close(self) -> None:
        self.socket.close()


def _held_still(robot: RemoteBackend) -> bool:
    """Push-T's stop() puts the controller's target onto the pusher and zeroes its
    velocity: what a stopped robot shows."""
    state = robot.read_state()
    velocity = robot.privileged_state()["agent_velocity"]
    return bool(np.array_equal(state[2:], state[:2]) and not velocity.any())


def _wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.05)
    return result


def test_remote_robot_gives_the_in_process_results_exactly(server):
    with (
        PushTBackend(PushTConfig(width=WIDTH, height=HEIGHT)) as local,
        _client(server.port) as remote,
    ):
        for attribute in ("name", "task", "fps", "action_meaning", "frame_shape"):
            assert getattr(remote, attribute) == getattr(local, attribute), attribute
        assert remote.max_episode_steps == local.max_episode_steps
        assert remote.state_names == local.state_names
        assert vars(remote.config) == dataclasses.asdict(local.config)
        for attribute in ("action_low", "action_high"):
            np.testing.assert_array_equal(getattr(remote, attribute), getattr(local, attribute))

        frames = [robot.reset(11) for robot in (local, remote)]
        assert frames[1].dtype == np.uint8 and frames[1].tobytes() == frames[0].tobytes()
        assert remote.read_state().tobytes() == local.read_state().tobytes()
        assert remote.read_reward() == local.read_reward()
        privileged = [robot.privileged_state() for robot in (local, remote)]
        assert privileged[1].keys() == privileged[0].keys()
        for key, value in privileged[0].items():
            np.testing.assert_array_equal(privileged[1][key], value, err_msg=key)

        results = [
            evaluate_policy(
                RandomPolicy(robot.action_low, robot.action_high, seed=0),
                robot,
                seeds=[3, 4, 5],
                max_steps=20,
                video_episodes=1,
                progress=False,
            )
            for robot in (local, remote)
        ]
        assert (results[0].episodes["length"] == 20).all()
        pd.testing.assert_frame_equal(results[1].episodes, results[0].episodes, check_exact=True)
        np.testing.assert_array_equal(results[1].videos[0].frames, results[0].videos[0].frames)

        # The scripted data collector reads privileged_state through the link too.
        episodes = [
            record_episode(robot, PushTTeleoperator(), seed=8, max_steps=20, settle_steps=3)
            for robot in (local, remote)
        ]
        assert episodes[1].attrs.keys() == episodes[0].attrs.keys()
        for key, value in episodes[0].attrs.items():
            np.testing.assert_array_equal(episodes[1].attrs[key], value, err_msg=key)
        for name, array in episodes[0].arrays().items():
            assert episodes[1].arrays()[name].tobytes() == array.tobytes(), name


def test_server_refuses_bad_requests_and_stays_up(server):
    raw = RawClient(server.port)
    try:
        # Only JSON headers: a pickle (or any other bytes) is refused, never loaded.
        reply = raw.send(pickle.dumps({"method": "stop"}))
        assert reply["ok"] is False and reply["error"] == "ProtocolError"
        assert "not UTF-8 JSON" in reply["message"]
        # Only the fixed method names.
        reply = raw.call("__init__")
        assert reply["ok"] is False and "unknown method '__init__'" in reply["message"]
        assert "describe, reset, step" in reply["message"]
        # Arrays are plain numbers: an object dtype (pointers) is refused.
        header = {"protocol": PROTOCOL_VERSION, "client": raw.client_id, "method": "step"}
        header["args"] = {"action": {"$array": 0, "dtype": "|O", "shape": [2]}}
        reply = raw.send(json.dumps(header).encode(), bytes(16))
        assert reply["ok"] is False and "not a numeric dtype" in reply["message"]
        header["args"]["action"]["dtype"] = "<f4"  # 16 bytes are not 2 float32
        reply = raw.send(json.dumps(header).encode(), bytes(16))
        assert reply["ok"] is False and "holds 16 bytes" in reply["message"]
        assert raw.call("reset", seed=0, extra=1)["message"] == (
            "reset takes the arguments ['seed'], got ['extra', 'seed']"
        )

        # The server's robot refuses bad actions itself (a client could skip its checks).
        assert raw.call("reset", seed=0)["ok"] is True
        reply = raw.call("step", action=np.array([np.nan, 0.0], np.float32))
        assert (reply["ok"], reply["error"]) == (False, "ValueError")
        assert "refusing non-finite action" in reply["message"]
        reply = raw.call("step", action=np.zeros(3, np.float32))
        assert (reply["ok"], reply["error"]) == (False, "ValueError")
        assert "action must have shape (2,)" in reply["message"]
        reply = raw.call("step", action=np.array([5.0, -5.0], np.float32))
        assert reply["ok"] is True  # clipped to the bounds, then executed
        np.testing.assert_array_equal(reply["result"]["info"]["action"], [1.0, -1.0])
        assert raw.call("stop")["ok"] is True
    finally:
        raw.close()

    with _client(server.port) as robot:  # still serving
        robot.reset(1)
        assert robot.step(np.zeros(2, np.float32)).frame.shape == (HEIGHT, WIDTH, 3)


def test_one_client_drives_the_robot_at_a_time(server):
    with _client(server.port) as first, _client(server.port) as second:
        first.reset(2)
        first.step(np.ones(2, np.float32))
        with pytest.raises(RuntimeError, match="running an episode for another client"):
            second.reset(2)
        first.stop()  # a stopped robot can be taken over
        second.reset(2)
        with pytest.raises(RuntimeError, match="did not reset the robot"):
            first.step(np.ones(2, np.float32))


CLIENT_SCRIPT = """
import itertools, sys
import numpy as np
from fog_pipeline.core.envs.remote import RemoteBackend, RemoteConfig

robot = RemoteBackend(RemoteConfig(port=int(sys.argv[1]), request_timeout_s=5.0))
robot.reset(0)
for step in itertools.count():
    # back and forth, so that the controller's target always leads the pusher
    direction = 1.0 if step % 10 < 5 else -1.0
    if robot.step(np.array([direction, 0.5 * direction], np.float32)).truncated:
        robot.reset(0)
    print(step, flush=True)
"""


def test_killing_the_client_mid_episode_stops_the_robot(server):
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT_SCRIPT, str(server.port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with _client(server.port) as observer:
            before = observer.safety_stops()
            deadline, step = time.monotonic() + STARTUP_S, -1
            while step < 5:
                ready, _, _ = select.select([client.stdout], [], [], deadline - time.monotonic())
                line = client.stdout.readline() if ready else ""
                if not line:
                    client.kill()
                    pytest.fail(f"the client did not step the robot:\n{client.stderr.read()}")
                step = int(line)
            state = observer.read_state()
            assert not np.allclose(state[2:], state[:2])  # moving: the target leads
            client.kill()  # mid-episode, no goodbye
            client.wait(timeout=10)

            def stopped_on_disconnect() -> dict[str, int] | None:
                now = observer.safety_stops()
                return now if now["client_disconnected"] > before["client_disconnected"] else None

            stops = _wait_for(
                stopped_on_disconnect,
                timeout_s=IDLE_TIMEOUT_S,  # the disconnect is seen at once, before idling
                what="the stop on the client's disconnect",
            )
            assert stops["idle_timeout"] == before["idle_timeout"]
            assert _held_still(observer)
    finally:
        client.kill()
        client.wait(timeout=10)
        client.stdout.close()
        client.stderr.close()


def test_a_silent_client_has_its_robot_stopped(server):
    with _client(server.port) as robot:
        before = robot.safety_stops()["idle_timeout"]
        robot.reset(5)
        for _ in range(3):
            robot.step(np.array([1.0, 1.0], np.float32))
        time.sleep(IDLE_TIMEOUT_S + 0.5)  # the client "thinks" too long mid-episode
        assert robot.safety_stops()["idle_timeout"] == before + 1
        assert _held_still(robot)
        robot.step(np.array([1.0, 1.0], np.float32))  # its episode carries on afterwards


def test_no_server_raises_a_timeout_naming_the_address_in_time():
    port = free_port()
    start = time.monotonic()
    with pytest.raises(RobotTimeoutError, match=rf"127\.0\.0\.1:{port} did not answer") as info:
        _client(port, connect_timeout_s=0.5)
    assert time.monotonic() - start < 0.5 + 1.0
    assert isinstance(info.value, ConnectionError) and isinstance(info.value, TimeoutError)
    assert "fog_pipeline.serve_robot" in str(info.value)  # says what to start


def test_a_lost_link_times_out_then_the_server_stops_the_robot_and_shuts_down(tmp_path):
    server = _start_server(tmp_path / "server.log")
    try:
        with _client(server.port, request_timeout_s=1.0) as robot:
            robot.reset(4)
            robot.step(np.array([1.0, 1.0], np.float32))
            server.process.send_signal(signal.SIGSTOP)  # the server hangs (or the link)
            start = time.monotonic()
            with pytest.raises(RobotTimeoutError, match=f"127.0.0.1:{server.port}"):
                robot.step(np.array([1.0, 1.0], np.float32))
            assert time.monotonic() - start < 1.0 + 1.0
            start = time.monotonic()
            robot.stop()  # the link is known down: returns at once, and does not raise
            assert time.monotonic() - start < 0.5
            server.process.send_signal(signal.SIGCONT)

        with _client(server.port) as observer:
            # Once the server runs again it sees the disconnect (or, at the latest, the
            # silence) and stops the robot.
            _wait_for(
                lambda: sum(observer.safety_stops().values()) >= 1 and _held_still(observer),
                timeout_s=IDLE_TIMEOUT_S + 3.0,
                what="the stop after the lost link",
            )
    finally:
        status = end_server(server)
    assert status == 0  # SIGTERM shuts down cleanly
    assert "shutting down (SIGTERM): stopping and closing the robot" in server.log.read_text()


def test_backend_options_select_the_server_and_must_match_its_robot(server):
    # collect.backend_options as a run that switches the base conf to `remote` has them:
    # the Push-T options stay (parameters merge key by key) and must be the served ones.
    options = {"width": WIDTH, "height": HEIGHT, "max_step": 25.0, "max_episode_steps": 300}
    with make_backend("remote", port=server.port, **options) as robot:
        assert robot.frame_shape == (HEIGHT, WIDTH, 3)
        assert robot.connection.robot_settings == options
    with pytest.raises(ValueError, match=r"width: the served robot has 16, not 32") as info:
        make_backend("remote", port=server.port, **options | {"width": 32})
    assert "Restart the server with the recording's options" in str(info.value)
    with pytest.raises(ValueError, match=r"prot: the served robot has no such setting"):
        make_backend("remote", port=server.port, prot=server.port)
    with pytest.raises(ValueError, match=r"backend\.remote\.request_timeout_s"):
        make_backend("remote", request_timeout_s=0)


def test_a_remote_robot_is_evaluated_alone_whatever_robots_asks(server, caplog):
    # A real robot (and a served simulator looks like one) is one robot: robots > 1
    # starts no pool, the evaluation runs serially on it and says so.
    make = functools.partial(make_backend, "remote", port=server.port)
    before = set(multiprocessing.active_children())
    with make() as remote, PushTBackend(PushTConfig(width=WIDTH, height=HEIGHT)) as local:
        assert not remote.is_simulator and local.is_simulator
        with caplog.at_level(logging.INFO), evaluation_robots(remote, make, 4) as robots:
            assert robots is remote
            assert set(multiprocessing.active_children()) == before
            policy = RandomPolicy(remote.action_low, remote.action_high, seed=0)
            result = evaluate_policy(policy, robots, [3, 4], 5, progress=False)
        assert "backend 'pusht' is not a simulator: evaluating on it alone" in caplog.text
        policy = RandomPolicy(local.action_low, local.action_high, seed=0)
        expected = evaluate_policy(policy, local, [3, 4], 5, progress=False)
    pd.testing.assert_frame_equal(result.episodes, expected.episodes, check_exact=True)


def test_wire_format_is_json_plus_raw_buffers():
    message = {"frame": np.arange(6, dtype=np.uint8).reshape(1, 2, 3), "reward": 0.5}
    frames = encode(message)
    assert json.loads(frames[0]) == {
        "frame": {"$array": 0, "dtype": "|u1", "shape": [1, 2, 3]},
        "reward": 0.5,
    }
    assert frames[1] == bytes(range(6))
    decoded = decode(frames)
    np.testing.assert_array_equal(decoded["frame"], message["frame"])
    assert decoded["frame"].flags.writeable
    with pytest.raises(TypeError, match="numeric only"):
        encode({"bad": np.array([object()])})
    with pytest.raises(ProtocolError, match="does not name an unused buffer"):
        decode([frames[0]])  # the buffer it references is missing
