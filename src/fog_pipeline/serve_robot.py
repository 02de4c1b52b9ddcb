"""Serve a robot backend over the network, for ``backend: remote`` on another computer.

Run it on the computer the robot (or simulator) is attached to::

    python -m fog_pipeline.serve_robot --backend pusht --host 0.0.0.0 --port 5555 \\
        --option width=32 --option height=32

``--option KEY=VALUE`` are the backend's options (``collect.backend_options``), each value
read as YAML (``32`` is an int, ``25.0`` a float). The pipeline then reaches the robot
through :class:`~fog_pipeline.core.envs.remote.RemoteBackend`, whose module describes the
wire format. Logs go to stderr; Ctrl-C or SIGTERM stops and closes the robot.

Transport: ZeroMQ REQ/REP. A control loop is lock-step, one command then one
observation, and REQ/REP enforces exactly that: a client cannot queue commands ahead, so
after a network hiccup the robot never works off a backlog of stale actions, and the REP
socket answers one request at a time, so calls on the one robot never overlap.
ROUTER/DEALER would add pipelining and per-client routing that a single robot has no use
for. The costs: the client must replace its REQ socket after a missed reply (RemoteBackend
does), and a REP socket cannot tell which client a disconnect came from, so any client
disconnecting during an episode stops the robot (a safe over-reaction: the controlling
client's next step moves it again).

Safety:

- the server answers only the methods in :data:`~fog_pipeline.core.envs.remote.METHODS`,
  looked up in a fixed table; a message is JSON plus raw numeric buffers, never pickle,
  and nothing received is executed. Anything malformed gets an error reply;
- actions go through the backend's public ``step()``, which refuses a wrong shape or a
  non-finite value and clips to the bounds; a refusal is an error reply naming the problem,
  and the server keeps serving;
- the robot is stopped when the client that reset it sends nothing for
  ``--idle-timeout`` seconds during an episode, or when a client disconnects during one;
  ``describe`` replies count these stops (``safety_stops``);
- only the client that reset the robot may step it, and a reset from another client is
  refused while an episode is in motion (stopping the robot first hands it over).

There is no authentication or encryption: serve on a trusted network only. The default
``--host 127.0.0.1`` serves this computer alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import yaml
import zmq
from zmq.utils.monitor import recv_monitor_message

from fog_pipeline.core.envs import RobotBackend, make_backend
from fog_pipeline.core.envs.remote import (
    DEFAULT_PORT,
    METHODS,
    PROTOCOL_VERSION,
    ProtocolError,
    decode,
    encode,
)

log = logging.getLogger("fog_pipeline.serve_robot")

# Largest inbound message part. A request is an action vector and a little JSON; a peer
# sending more is not a robot client, and ZeroMQ drops it instead of buffering its data.
MAX_MESSAGE_BYTES = 1 << 20
# Errors of the robot contract: the client asked for something the robot refuses. Logged
# as one line; any other exception is a fault in the backend and logged with its traceback.
_REFUSALS = (ValueError, TypeError, RuntimeError, NotImplementedError)


def _arguments(method: str, args: dict[str, Any], names: tuple[str, ...]) -> None:
    if set(args) != set(names):
        raise ProtocolError(
            f"{method} takes the arguments {list(names)}, got {sorted(args)}"
            if names
            else f"{method} takes no arguments, got {sorted(args)}"
        )


class RobotServer:
    """Serves one backend on a REP socket bound to ``host:port`` (see the module docstring)."""

    def __init__(self, backend: RobotBackend, host: str, port: int, idle_timeout_s: float) -> None:
        self.backend = backend
        self.idle_timeout_s = float(idle_timeout_s)
        self.address = f"{host}:{port}"
        self._socket = zmq.Context.instance().socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self._socket.bind(f"tcp://{self.address}")
        self._monitor = self._socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._controller: str | None = None  # the client that reset the robot last
        self._moving = False  # a reset or step ran since the robot was last stopped
        self._last_command = time.monotonic()  # the controller's last request
        self.safety_stops = {"idle_timeout": 0, "client_disconnected": 0}
        self._handlers: dict[str, Callable[[str, dict[str, Any]], Any]] = {
            "describe": self._describe,
            "reset": self._reset,
            "step": self._step,
            "read_state": self._query(backend.read_state),
            "read_reward": self._query(backend.read_reward),
            "privileged_state": self._query(backend.privileged_state),
            "stop": self._stop,
        }
        assert set(self._handlers) == set(METHODS)  # the wire's method list is this table

    def serve(self) -> None:
        """Answer requests until interrupted (KeyboardInterrupt, which SIGTERM also raises)."""
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        log.info(
            "serving %s (%s) on %s; the robot stops after %g s without requests",
            self.backend.name,
            self.backend.task,
            self.address,
            self.idle_timeout_s,
        )
        while True:
            timeout_ms = None  # nothing moves: wait for the next client as long as it takes
            if self._moving:
                left = self._last_command + self.idle_timeout_s - time.monotonic()
                timeout_ms = max(0, math.ceil(left * 1000))
            ready = dict(poller.poll(timeout_ms))
            if self._socket in ready:
                self._answer()
            if self._monitor in ready:
                event = recv_monitor_message(self._monitor)
                if event["event"] == zmq.EVENT_DISCONNECTED and self._moving:
                    self._safety_stop("client_disconnected", "a client disconnected")
            idle = time.monotonic() - self._last_command
            if self._moving and idle >= self.idle_timeout_s:
                self._safety_stop("idle_timeout", f"no request from its client for {idle:.1f} s")

    def close(self) -> None:
        self._socket.disable_monitor()
        self._monitor.close()
        self._socket.close()

    def _answer(self) -> None:
        frames = self._socket.recv_multipart()
        try:
            reply = encode({"ok": True, "result": self._dispatch(frames)})
        except Exception as exc:  # every request gets a reply, and the server stays up
            if isinstance(exc, _REFUSALS):
                log.warning("refused a request: %s: %s", type(exc).__name__, exc)
            else:
                log.exception("the backend failed on a request")
            reply = encode({"ok": False, "error": type(exc).__name__, "message": str(exc)})
        self._socket.send_multipart(reply)

    def _dispatch(self, frames: list[bytes]) -> Any:
        request = decode(frames)
        keys = ("protocol", "client", "method", "args")
        if not isinstance(request, dict) or set(request) != set(keys):
            raise ProtocolError(f"a request is a JSON object with the keys {list(keys)}")
        if request["protocol"] != PROTOCOL_VERSION:
            raise ProtocolError(
                f"the client speaks protocol {request['protocol']!r}, this server "
                f"{PROTOCOL_VERSION}: run the same fog_pipeline version on both computers"
            )
        client, method, args = request["client"], request["method"], request["args"]
        if not isinstance(client, str) or not isinstance(args, dict):
            raise ProtocolError("a request's client is a string and its args an object")
        if not isinstance(method, str) or method not in self._handlers:
            raise ProtocolError(
                f"unknown method {method!r}; this server answers only {', '.join(METHODS)}"
            )
        if client == self._controller:
            self._last_command = time.monotonic()
        log.debug("%s from client %s", method, client)
        return self._handlers[method](client, args)

    def _describe(self, client: str, args: dict[str, Any]) -> dict[str, Any]:
        _arguments("describe", args, ())
        backend = self.backend
        return {
            "name": backend.name,
            "task": backend.task,
            "fps": float(backend.fps),
            "action_low": np.asarray(backend.action_low, dtype=np.float32),
            "action_high": np.asarray(backend.action_high, dtype=np.float32),
            "action_meaning": backend.action_meaning,
            "frame_shape": list(backend.frame_shape),
            "max_episode_steps": int(backend.max_episode_steps),
            "state_names": list(backend.state_names),
            "hold_command": backend.hold_command,
            "idle_timeout_s": self.idle_timeout_s,
            "config": self._backend_settings(),
            "safety_stops": dict(self.safety_stops),
        }

    def _backend_settings(self) -> dict[str, Any]:
        # The backend's own settings (its typed config), which in-process callers can
        # read as ``backend.config``: the scripted teleoperator reads Push-T's max_step.
        config = getattr(self.backend, "config", None)
        if dataclasses.is_dataclass(config) and not isinstance(config, type):
            return dataclasses.asdict(config)
        return {}

    def _reset(self, client: str, args: dict[str, Any]) -> np.ndarray:
        _arguments("reset", args, ("seed",))
        seed = args["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ProtocolError(f"reset: seed must be an integer, got {seed!r}")
        if self._moving and client != self._controller:
            raise RuntimeError(
                "the robot is running an episode for another client; wait until that "
                "client stops it, or call stop() to take the robot over"
            )
        self._controller, self._last_command = client, time.monotonic()
        self._moving = True  # set first: a reset that fails half-way may have moved it
        return self.backend.reset(seed)

    def _step(self, client: str, args: dict[str, Any]) -> dict[str, Any]:
        _arguments("step", args, ("action",))
        action = args["action"]
        if not isinstance(action, np.ndarray):
            raise ProtocolError(f"step: action must be an array, got {action!r}")
        if client != self._controller:
            raise RuntimeError(
                "this client did not reset the robot (another client did, or nobody has "
                "since the server started): call reset() first"
            )
        self._moving = True
        result = self.backend.step(action)  # refuses and clips like any local call
        return {
            "frame": result.frame,
            "reward": result.reward,
            "success": result.success,
            "terminated": result.terminated,
            "truncated": result.truncated,
            "progress": result.progress,
            "info": result.info,
        }

    def _stop(self, client: str, args: dict[str, Any]) -> None:
        _arguments("stop", args, ())
        self.backend.stop()
        self._moving = False

    def _query(self, read: Callable[[], Any]) -> Callable[[str, dict[str, Any]], Any]:
        def handler(client: str, args: dict[str, Any]) -> Any:
            _arguments(read.__name__, args, ())
            return read()

        return handler

    def _safety_stop(self, cause: str, why: str) -> None:
        log.warning("stopping the robot during an episode: %s", why)
        self.backend.stop()
        self._moving = False
        self.safety_stops[cause] += 1


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)  # safe_load: plain values, no objects
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"{key}: {value!r} is not a YAML value ({exc})") from None


def _seconds(text: str) -> float:
    seconds = float(text)
    if not seconds > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text}")
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fog_pipeline.serve_robot",
        description="Serve a robot backend over the network (for `backend: remote`).",
    )
    parser.add_argument("--backend", default="pusht", help="registered backend name")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on: 0.0.0.0 for every network (default: this computer only)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a backend option (value read as YAML); repeat for several",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_seconds,
        # Long enough for a policy that thinks a while per step on a CPU (a stop changes
        # what the robot does next, so the episode would differ from an in-process one);
        # short enough that a dead client leaves the robot unattended only briefly.
        default=5.0,
        metavar="SECONDS",
        help="stop the robot when its client sends nothing this long during an episode "
        "(default: %(default)g; keep it above the slowest policy step)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM takes the Ctrl-C path: one shutdown that stops and closes the robot.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        backend = make_backend(args.backend, **dict(args.option))
    except ValueError as exc:  # unknown backend or option: the message names it
        log.error("%s\nHere the backend options are --option KEY=VALUE.", exc)
        return 2
    with backend:  # closing stops the robot first, whatever ends the server
        try:
            server = RobotServer(backend, args.host, args.port, args.idle_timeout)
        except zmq.ZMQError as exc:
            log.error(
                "cannot serve on %s:%d: %s (another server on that port? choose another "
                "--port; --host must be an address of this computer)",
                args.host,
                args.port,
                exc,
            )
            return 1
        try:
            server.serve()
        except KeyboardInterrupt as exc:
            log.info("shutting down (%s): stopping and closing the robot", str(exc) or "Ctrl-C")
        finally:
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
