"""A robot on another computer: :class:`RemoteBackend` drives a backend that
:mod:`fog_pipeline.serve_robot` serves over ZeroMQ, and the wire format both ends speak.

The client asks the server for the robot's spec when it is made (name, task, fps, action
bounds and meaning, frame shape, episode limit, state names), so collection and evaluation
cannot tell it from the in-process backend: the same calls return the same arrays.

Wire format (:func:`encode` / :func:`decode`): a message is a ZeroMQ multipart message
whose first part is a UTF-8 JSON header and whose other parts are raw array buffers. An
array inside the header is a placeholder ``{"$array": k, "dtype": "<f4", "shape": [2]}``
for part ``k + 1``. Only plain numeric dtypes travel (bool, int, uint, float): their bytes
are values, never object pointers, and nothing is unpickled or executed, so a malformed
or hostile message can at worst be refused.

Requests are ``{"protocol", "client", "method", "args"}``; ``method`` is one of
:data:`METHODS` and ``client`` a random id per :class:`RemoteBackend`, so the server knows
which client started the running episode. Replies are ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": <exception type>, "message": ...}``.

Safety when the link fails: a request that gets no reply within its timeout raises
:class:`RobotTimeoutError` naming the server and what to check. The client then closes its
socket, and the server stops the robot when a client disconnects mid-episode; if the
server cannot be reached at all, it stops the robot by itself once no request came for
its ``--idle-timeout``.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from types import SimpleNamespace
from typing import Annotated, Any

import numpy as np
import zmq
from pydantic import Field, model_validator

from fog_pipeline.core.config import STRICT_KEYS, ConfigError
from fog_pipeline.core.envs.robot import RobotBackend, StepResult

log = logging.getLogger(__name__)

# Bumped whenever a message changes meaning; both computers must run the same version.
PROTOCOL_VERSION = 1
DEFAULT_PORT = 5555
# The only names a server answers: everything a robot client may do, nothing else.
METHODS = ("describe", "reset", "step", "read_state", "read_reward", "privileged_state", "stop")
# bool, signed and unsigned integers, floats: their bytes are plain values (an object or
# void dtype would make np.frombuffer read pointers or arbitrary records).
_ARRAY_KINDS = "biuf"
_ARRAY_KEY = "$array"
# Exceptions of the robot contract (refused action, no episode running, a method the
# backend lacks) are raised again as themselves on the client, so that callers handle a
# remote robot exactly like a local one. Anything else arrives as RemoteRobotError.
_CONTRACT_ERRORS = {
    cls.__name__: cls for cls in (ValueError, TypeError, RuntimeError, NotImplementedError)
}


class ProtocolError(ValueError):
    """A message that does not follow the wire format."""


class RobotConnectionError(ConnectionError):
    """The robot server cannot be reached (or went away)."""


class RobotTimeoutError(RobotConnectionError, TimeoutError):
    """The robot server did not answer a request in time."""


class RemoteRobotError(RuntimeError):
    """The robot server answered with an error outside the robot contract, or with a reply
    this client cannot read (e.g. a different fog_pipeline version)."""


def encode(message: Any) -> list[bytes]:
    """``message`` (JSON values and numpy arrays, nested in dicts and lists) as multipart
    frames: the JSON header, then one raw buffer per array."""
    buffers: list[bytes] = []

    def pack(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            array = np.ascontiguousarray(value)
            if array.dtype.kind not in _ARRAY_KINDS:
                raise TypeError(f"cannot send an array of dtype {array.dtype} (numeric only)")
            buffers.append(array.tobytes())
            return {_ARRAY_KEY: len(buffers) - 1, "dtype": array.dtype.str, "shape": array.shape}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, dict):
            if _ARRAY_KEY in value:
                raise TypeError(f"cannot send a dict with the reserved key {_ARRAY_KEY!r}")
            return {str(key): pack(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [pack(item) for item in value]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"cannot send a {type(value).__name__} (JSON values and arrays only)")

    header = json.dumps(pack(message)).encode("utf-8")
    return [header, *buffers]


def decode(frames: Sequence[bytes]) -> Any:
    """The message :func:`encode` made of ``frames``; raises :class:`ProtocolError` for
    anything else (not JSON, a bad array reference, a buffer of the wrong size)."""
    if not frames:
        raise ProtocolError("empty message")
    try:
        header = json.loads(bytes(frames[0]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(
            f"the header is not UTF-8 JSON ({exc}); a message is a JSON header plus raw "
            "array buffers (no pickle)"
        ) from None
    buffers, used = frames[1:], set()

    def array(ref: dict[str, Any]) -> np.ndarray:
        index, dtype, shape = ref.get(_ARRAY_KEY), ref.get("dtype"), ref.get("shape")
        if set(ref) != {_ARRAY_KEY, "dtype", "shape"}:
            raise ProtocolError(f"an array reference has keys {sorted(ref)}")
        if not _is_count(index) or index >= len(buffers) or index in used:
            raise ProtocolError(f"array reference {index!r} does not name an unused buffer")
        if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
            raise ProtocolError(f"array shape {shape!r} is not a list of sizes")
        try:
            dtype = np.dtype(dtype) if isinstance(dtype, str) else None
        except TypeError:
            dtype = None
        if dtype is None or dtype.kind not in _ARRAY_KINDS:
            raise ProtocolError(f"array dtype {ref.get('dtype')!r} is not a numeric dtype")
        expected = math.prod(shape) * dtype.itemsize
        if len(buffers[index]) != expected:
            raise ProtocolError(
                f"array buffer {index} holds {len(buffers[index])} bytes, {dtype} {shape} "
                f"needs {expected}"
            )
        used.add(index)
        # A copy: arrays from a remote robot are writable, like those of a local one.
        return np.frombuffer(buffers[index], dtype=dtype).reshape(shape).copy()

    def unpack(value: Any) -> Any:
        if isinstance(value, dict):
            if _ARRAY_KEY in value:
                return array(value)
            return {key: unpack(item) for key, item in value.items()}
        if isinstance(value, list):
            return [unpack(item) for item in value]
        return value

    message = unpack(header)
    if len(used) != len(buffers):
        raise ProtocolError(f"{len(buffers) - len(used)} array buffer(s) are not referenced")
    return message


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass
class RemoteConfig:
    """Where the robot server is (``make_backend("remote", **kwargs)``).

    Any other key is a setting the served robot must have (a key of its backend options,
    e.g. ``width``), collected into ``robot_settings`` and checked against the server's
    when connecting.
    """

    __pydantic_config__ = STRICT_KEYS

    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = DEFAULT_PORT
    # Seconds to wait for the server's first reply: it may still be starting (importing
    # a simulator or a robot driver takes a few seconds).
    connect_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    # Seconds to wait for each later reply. One control step is 0.1 s at 10 Hz, so a
    # reply this late means the link or the server is down, not that the robot is busy.
    request_timeout_s: Annotated[float, Field(gt=0)] = 2.0
    # Parameters merge key by key, so a run that switches collect.backend to `remote`
    # keeps the base Push-T options (width, height, ...). Rather than ignored, they are
    # checked: a policy must see the camera its training data was recorded with.
    robot_settings: dict[str, Any] = field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_robot_settings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = {f.name for f in fields(cls)}
        settings = {key: value for key, value in data.items() if key not in known}
        if not settings:
            return data
        if "robot_settings" in data:
            raise ValueError(
                f"robot settings given twice, as robot_settings and as the keys "
                f"{sorted(settings)}: list them once, as keys of their own"
            )
        return {key: value for key, value in data.items() if key in known} | {
            "robot_settings": settings
        }


class RemoteBackend(RobotBackend):
    """A robot served by ``python -m fog_pipeline.serve_robot`` on another computer.

    It takes the served robot's name and spec, so episodes it records say which robot
    they came from. ``config`` holds the served robot's settings (e.g. Push-T's
    ``max_step``, which the scripted teleoperator reads), as on the in-process backend;
    the connection settings are ``connection``. The safety rules of :class:`RobotBackend`
    hold on both ends: this client clips and refuses actions before sending them, and the
    server's robot does it again before its actuator. Not thread-safe (one ZeroMQ socket
    per backend).
    """

    def __init__(self, config: RemoteConfig | None = None) -> None:
        self.connection = config or RemoteConfig()
        self.address = f"{self.connection.host}:{self.connection.port}"
        self._client_id = uuid.uuid4().hex
        self._socket: zmq.Socket | None = None
        # Set by a missed reply, cleared by the next reply: stop() then does not wait out
        # another timeout on a link known to be down (the server stops the robot itself).
        self._link_down = False
        self._open_socket()
        try:
            spec = self._request("describe", timeout_key="connect_timeout_s")
            self._apply_spec(spec)
            self._check_robot_settings()
        except BaseException:
            self._close_socket()
            raise

    def _open_socket(self) -> None:
        socket = zmq.Context.instance().socket(zmq.REQ)
        socket.setsockopt(zmq.LINGER, 0)  # closing never waits for a server that is gone
        socket.connect(f"tcp://{self.address}")
        self._socket = socket

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _apply_spec(self, spec: Any) -> None:
        try:
            self.name = str(spec["name"])
            self.task = str(spec["task"])
            self.fps = float(spec["fps"])
            self.action_low = np.asarray(spec["action_low"], dtype=np.float32)
            self.action_high = np.asarray(spec["action_high"], dtype=np.float32)
            self.action_meaning = str(spec["action_meaning"])
            height, width, channels = (int(n) for n in spec["frame_shape"])
            self.max_episode_steps = int(spec["max_episode_steps"])
            self.state_names = tuple(str(name) for name in spec["state_names"])
            self.hold_command = str(spec["hold_command"])
            self.idle_timeout_s = float(spec["idle_timeout_s"])
            self.config = SimpleNamespace(**spec["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RemoteRobotError(
                f"robot server {self.address} sent a spec this client cannot read "
                f"({type(exc).__name__}: {exc}); run the same fog_pipeline version on both "
                "computers"
            ) from None
        self.frame_shape = (height, width, channels)

    def _check_robot_settings(self) -> None:
        served = vars(self.config)
        problems = []
        for key, value in self.connection.robot_settings.items():
            if key not in served:
                problems.append(f"{key}: the served robot has no such setting")
            elif served[key] != value:
                problems.append(f"{key}: the served robot has {served[key]!r}, not {value!r}")
        if problems:
            settings = ", ".join(f"{key}={value!r}" for key, value in served.items())
            raise ConfigError(
                f"robot server {self.address} serves {self.name!r} with other settings than "
                "the backend options expect:\n  " + "\n  ".join(problems) + "\nRestart the "
                "server with the recording's options (--option KEY=VALUE) or change the "
                "backend options (collect.backend_options); keys other than host, port, "
                "connect_timeout_s and request_timeout_s are settings of the served robot, "
                f"which has {settings or 'none'}."
            )

    def _request(self, method: str, timeout_key: str = "request_timeout_s", **args: Any) -> Any:
        """Send one request and return the server's result; raises what the server raised
        (see ``_CONTRACT_ERRORS``), :class:`RemoteRobotError`, or :class:`RobotTimeoutError`."""
        if self._socket is None:
            raise RobotConnectionError(f"robot server {self.address}: this backend is closed")
        timeout_s = getattr(self.connection, timeout_key)
        request = {
            "protocol": PROTOCOL_VERSION,
            "client": self._client_id,
            "method": method,
            "args": args,
        }
        self._socket.send_multipart(encode(request))
        if not self._socket.poll(int(timeout_s * 1000), zmq.POLLIN):
            # A REQ socket that missed its reply refuses to send again: replace it. Closing
            # the old one is also a disconnect, on which the server stops the robot.
            self._close_socket()
            self._open_socket()
            self._link_down = True
            raise RobotTimeoutError(
                f"robot server {self.address} did not answer {method!r} within "
                f"{timeout_s:g} s. Check that it runs on that computer (python -m "
                f"fog_pipeline.serve_robot --backend <name> --host 0.0.0.0 --port "
                f"{self.connection.port}), that host and port in the backend options "
                "(collect.backend_options) name it, and that no firewall blocks the port; "
                f"for a robot that is merely slow, raise {timeout_key}. This client "
                "disconnected, which makes a reachable server stop the robot; an unreachable "
                "one stops it after its --idle-timeout without requests."
            )
        self._link_down = False
        try:
            reply = decode(self._socket.recv_multipart())
            ok = reply["ok"]
        except (ProtocolError, KeyError, TypeError) as exc:
            raise RemoteRobotError(
                f"robot server {self.address} sent an unreadable reply to {method!r} ({exc}); "
                "run the same fog_pipeline version on both computers"
            ) from None
        if ok:
            return reply.get("result")
        error, message = reply.get("error"), reply.get("message")
        raise _CONTRACT_ERRORS.get(error, RemoteRobotError)(
            f"robot server {self.address} refused {method!r}: {error}: {message}"
        )

    def _frame(self, frame: Any) -> np.ndarray:
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
            raise RemoteRobotError(f"robot server {self.address} sent a frame that is not uint8")
        if frame.shape != self.frame_shape:
            raise RemoteRobotError(
                f"robot server {self.address} sent a frame of shape {frame.shape}, its spec "
                f"says {self.frame_shape}"
            )
        return frame

    def _reset(self, seed: int) -> np.ndarray:
        return self._frame(self._request("reset", seed=seed))

    def _step(self, action: np.ndarray) -> StepResult:
        result = self._request("step", action=action)
        progress = result["progress"]
        return StepResult(
            frame=self._frame(result["frame"]),
            reward=float(result["reward"]),
            success=bool(result["success"]),
            terminated=bool(result["terminated"]),
            truncated=bool(result["truncated"]),
            progress=None if progress is None else float(progress),
            info=dict(result["info"]),
        )

    def read_state(self) -> np.ndarray:
        return np.asarray(self._request("read_state"), dtype=np.float32)

    def read_reward(self) -> float:
        return float(self._request("read_reward"))

    def privileged_state(self) -> dict[str, Any]:
        """The served robot's privileged state (for the scripted data collector only)."""
        return dict(self._request("privileged_state"))

    def safety_stops(self) -> dict[str, int]:
        """How often the server stopped the robot by itself, by cause
        (``idle_timeout``, ``client_disconnected``), since it started."""
        return dict(self._request("describe")["safety_stops"])

    def stop(self) -> None:
        """Ask the server to hold the robot still. Never raises for a lost link: the
        server then stops the robot by itself (a warning says so)."""
        if self._link_down:
            log.warning(
                "robot server %s is not answering, so no stop was sent; it stops the robot "
                "by itself after %g s without requests",
                self.address,
                self.idle_timeout_s,
            )
            return
        try:
            self._request("stop")
        except RobotConnectionError as exc:
            log.warning("could not stop the robot: %s", exc)

    def close(self) -> None:
        """Stop the robot and disconnect; the server keeps running for the next client."""
        if self._socket is not None:
            super().close()
            self._close_socket()
