"""The robots an evaluation steps: the caller's backend in this process, or a pool of
simulated copies of it, each in its own process.

Both speak the same request/reply interface to :func:`~.rollout.evaluate_policy`
(``send_reset``/``send_step`` to a robot, then ``receive`` its reply), and both run one
robot's half of an episode with the same code, :class:`RobotSide`, so an episode gives
the same numbers wherever it runs. :func:`evaluation_robots` picks one: a pool only for
a backend marked :attr:`~fog_pipeline.core.envs.robot.RobotBackend.is_simulator`, a real
robot is only ever driven alone.

Safety: the robot side stops its backend whenever a request fails and at the end of every
episode; :meth:`SimulatorPool.stop` stops the robots of episodes still running (after
their pending replies, so a robot is never stopped mid-step); workers ignore Ctrl-C (the
parent stops them in order) and stop their robot when the parent goes away.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import pickle
import signal
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import connection
from typing import Any, Protocol

import numpy as np

from fog_pipeline.core.envs.robot import RobotBackend, StepResult

log = logging.getLogger(__name__)

# Seconds a worker gets to answer once evaluation is stopping (its step, then the stop)
# or closing, before it is terminated: a simulator step takes milliseconds.
_STOP_TIMEOUT_S = 30.0


class RobotSidePolicy(Protocol):
    """A policy that runs beside the robot, in its process, because it reads the backend
    (the scripted data-collection policy reads its privileged state)."""

    def reset_episode(self, episode: int) -> None:
        """Start evaluation episode ``episode`` (the index of its scene seed)."""

    def act(self, frame: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The next action after ``frame`` and ``state``."""


# Builds a robot-side policy around a robot's own backend; sent to every worker (picklable).
RobotSideFactory = Callable[[RobotBackend], RobotSidePolicy]


@dataclass
class ResetReply:
    frame: np.ndarray
    state: np.ndarray
    initial_coverage: float


@dataclass
class StepReply:
    frame: np.ndarray
    state: np.ndarray
    reward: float
    success: bool
    done: bool  # the episode is over (success, step limit or max_steps); the robot is stopped


def _check_executed(backend: RobotBackend, result: StepResult) -> None:
    """Fail if the backend reports an executed action outside its bounds (or none).

    ``RobotBackend.step`` clips before the actuator and reports the executed action; a
    subclass that overrode ``step`` could skip that, and on a robot that must not pass.
    """
    executed = result.info.get("action")
    if executed is None:
        raise RuntimeError(
            f"backend {backend.name!r} did not report the executed action "
            "(StepResult.info['action']); RobotBackend.step() does: do not override it"
        )
    executed = np.asarray(executed)
    if np.any(executed < backend.action_low) or np.any(executed > backend.action_high):
        raise RuntimeError(
            f"backend {backend.name!r} executed action {executed}, outside its bounds "
            f"[{backend.action_low}, {backend.action_high}]; its step() must clip like "
            "RobotBackend.step() does"
        )


def _read_state(backend: RobotBackend) -> np.ndarray:
    """The robot's proprioception, checked against its declared ``state_names``."""
    state = backend.read_state()
    expected = (len(backend.state_names),)
    if np.shape(state) != expected:
        raise RuntimeError(
            f"backend {backend.name!r}: read_state() returned shape {np.shape(state)}, "
            f"expected {expected} (one value per state_names entry)"
        )
    return state


def _read_initial_coverage(backend: RobotBackend) -> float:
    coverage = float(backend.read_reward())
    if not math.isfinite(coverage):
        raise RuntimeError(f"backend {backend.name!r}: read_reward() returned {coverage}")
    return coverage


class RobotSide:
    """One robot's half of evaluation episodes: reset to a scene, execute actions (from
    the request, or from a robot-side policy), report what it observed. Whatever fails,
    the robot is stopped before the error propagates; it is stopped after every episode."""

    def __init__(self, backend: RobotBackend) -> None:
        self.backend = backend
        self._policy: RobotSidePolicy | None = None
        self._frame: np.ndarray | None = None
        self._state: np.ndarray | None = None
        self._max_steps = 0

    def use_policy(self, factory: RobotSideFactory | None) -> None:
        """Actions from now on: computed here by ``factory(backend)``, or (None) sent."""
        self._policy = None if factory is None else factory(self.backend)

    def reset(self, seed: int, episode: int, max_steps: int) -> ResetReply:
        backend = self.backend
        try:
            if self._policy is not None:
                self._policy.reset_episode(episode)
            frame = backend.reset(seed)
            # The scene's label before any action: how much of the goal the block covers
            # already (a policy is credited with what it adds, see `improvement`).
            coverage = _read_initial_coverage(backend)
            state = _read_state(backend)
        except BaseException:
            backend.stop()  # also on Ctrl-C: never leave the robot moving
            raise
        self._frame, self._state, self._max_steps = frame, state, max_steps
        return ResetReply(frame, state, coverage)

    def step(self, action: np.ndarray | None) -> StepReply:
        backend = self.backend
        try:
            if action is None:
                action = self._policy.act(self._frame, self._state)
            result = backend.step(action)  # clips to the bounds
            _check_executed(backend, result)
            state = _read_state(backend)
        except BaseException:
            backend.stop()
            raise
        done = result.terminated or result.truncated or backend.steps_taken >= self._max_steps
        if done:
            backend.stop()
        self._frame, self._state = result.frame, state
        return StepReply(result.frame, state, float(result.reward), bool(result.success), done)

    def stop(self) -> None:
        self.backend.stop()


class SerialRobot:
    """The caller's backend, stepped in this process: one robot, one request at a time
    (run when its reply is asked for, so errors surface in ``receive``)."""

    size = 1

    def __init__(self, backend: RobotBackend) -> None:
        self.name, self.fps = backend.name, float(backend.fps)
        self.max_episode_steps = backend.max_episode_steps
        self._robot = RobotSide(backend)
        self._request: Callable[[], Any] | None = None

    def use_policy(self, factory: RobotSideFactory | None) -> None:
        self._robot.use_policy(factory)

    def send_reset(self, robot: int, seed: int, episode: int, max_steps: int) -> None:
        self._request = lambda: self._robot.reset(seed, episode, max_steps)

    def send_step(self, robot: int, action: np.ndarray | None) -> None:
        self._request = lambda: self._robot.step(action)

    def wait(self, robots: list[int]) -> list[int]:
        return robots  # its one request runs in receive()

    def receive(self, robot: int) -> Any:
        request, self._request = self._request, None
        return request()

    def stop(self, robots: Iterable[int]) -> None:
        self._request = None
        if list(robots):
            self._robot.stop()


class RemoteTraceback(Exception):
    """The traceback of an error raised in a robot's worker process (its ``__cause__``)."""

    def __str__(self) -> str:
        return self.args[0]


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError with its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _worker(conn: Any, make_backend: Callable[[], RobotBackend]) -> None:
    """A pool worker: one robot, answering the parent's requests until told to close."""
    # Ctrl-C reaches every process of the terminal; the parent handles it by stopping the
    # robots in order, so a worker keeps answering until it is told to close.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        backend = make_backend()
    except Exception as exc:
        conn.send(("error", _portable(exc), traceback.format_exc()))
        return
    try:
        robot = RobotSide(backend)
        conn.send(("ok", (backend.name, float(backend.fps), backend.max_episode_steps)))
        while True:
            try:
                command, *args = conn.recv()
            except EOFError:  # the parent is gone
                return
            if command == "close":
                return
            try:
                reply = ("ok", getattr(robot, command)(*args))
            except Exception as exc:
                reply = ("error", _portable(exc), traceback.format_exc())
            conn.send(reply)
    finally:
        backend.close()  # stops the robot


@contextmanager
def _whole_messages() -> Iterator[None]:
    """Hold a Ctrl-C until the message is sent or read, and counted: one cut in the middle
    leaves the pipe unreadable, or stop() waiting for a reply that will not come."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only
        return
    held: list[tuple] = []
    previous = signal.signal(signal.SIGINT, lambda *received: held.append(received))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held and callable(previous):
            previous(*held[0])  # the default handler raises KeyboardInterrupt


class SimulatorPool:
    """``size`` copies of a simulated robot, each built by ``make_backend()`` in its own
    process and driven through a pipe. A context manager; :meth:`close` ends the workers
    (terminating any that do not answer)."""

    def __init__(self, make_backend: Callable[[], RobotBackend], size: int) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one robot, got {size}")
        self.size = size
        # spawn, not fork: the parent may hold torch's thread pools or a CUDA context,
        # neither of which survives a fork.
        context = multiprocessing.get_context("spawn")
        self._conns, self._processes = [], []
        self._pending = [0] * size  # replies not yet received, per robot
        try:
            for index in range(size):
                parent, child = context.Pipe()
                process = context.Process(
                    target=_worker,
                    args=(child, make_backend),
                    name=f"robot-{index}",
                    daemon=True,  # never outlives the evaluation
                )
                process.start()
                child.close()  # the worker's end: the parent then sees EOF if it dies
                self._conns.append(parent)
                self._processes.append(process)
                self._pending[index] = 1
            specs = {self.receive(index) for index in range(size)}
        except BaseException:
            self.close()
            raise
        if len(specs) != 1:
            self.close()
            raise RuntimeError(f"the pool's robots differ: {sorted(specs)}")
        self.name, self.fps, self.max_episode_steps = specs.pop()

    def _send(self, robot: int, *request: Any) -> None:
        with _whole_messages():
            self._conns[robot].send(request)
            self._pending[robot] += 1

    def use_policy(self, factory: RobotSideFactory | None) -> None:
        for robot in range(self.size):
            self._send(robot, "use_policy", factory)
        for robot in range(self.size):
            self.receive(robot)

    def send_reset(self, robot: int, seed: int, episode: int, max_steps: int) -> None:
        self._send(robot, "reset", seed, episode, max_steps)

    def send_step(self, robot: int, action: np.ndarray | None) -> None:
        self._send(robot, "step", action)

    def wait(self, robots: list[int]) -> list[int]:
        """Those of ``robots`` whose reply is in (or whose process died), once any is."""
        handles = {self._conns[robot]: robot for robot in robots}
        handles |= {self._processes[robot].sentinel: robot for robot in robots}
        return sorted({handles[handle] for handle in connection.wait(list(handles))})

    def receive(self, robot: int) -> Any:
        """The oldest pending reply of ``robot``; raises the error it reported."""
        status, *reply = self._reply(robot)
        if status == "error":
            exc, remote = reply
            exc.__cause__ = RemoteTraceback(remote)
            raise exc
        return reply[0]

    def _reply(self, robot: int, timeout_s: float | None = None) -> tuple:
        conn, process = self._conns[robot], self._processes[robot]
        waited = 0.0
        while not conn.poll(0.5):  # wake up now and then to notice a dead worker
            waited += 0.5
            if not process.is_alive():
                break
            if timeout_s is not None and waited >= timeout_s:
                raise TimeoutError(f"robot process {process.name} did not answer in {timeout_s} s")
        try:
            with _whole_messages():
                reply = conn.recv()
                self._pending[robot] -= 1
                return reply
        except EOFError:
            process.join(_STOP_TIMEOUT_S)  # its exit code
            raise RuntimeError(
                f"robot process {process.name} exited (code {process.exitcode})"
            ) from None

    def stop(self, robots: Iterable[int]) -> None:
        """Stop ``robots`` once their pending replies are in (an error in one is moot: the
        evaluation is failing already); a worker that does not answer is terminated."""
        for robot in robots:
            try:
                while self._pending[robot]:
                    self._reply(robot, _STOP_TIMEOUT_S)
                self._send(robot, "stop")
                if self._reply(robot, _STOP_TIMEOUT_S)[0] == "error":
                    raise RuntimeError("stop() failed")
            except (Exception, KeyboardInterrupt):
                log.warning("robot process %d did not stop: terminating it", robot)
                self._terminate(robot)

    def _terminate(self, robot: int) -> None:
        process = self._processes[robot]
        process.terminate()
        process.join(_STOP_TIMEOUT_S)
        self._pending[robot] = 0

    def close(self) -> None:
        for robot, (conn, process) in enumerate(zip(self._conns, self._processes, strict=True)):
            try:
                conn.send(("close",))
            except (BrokenPipeError, OSError):
                pass  # already gone
            process.join(_STOP_TIMEOUT_S)
            if process.is_alive():
                self._terminate(robot)
            conn.close()

    def __enter__(self) -> SimulatorPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextmanager
def evaluation_robots(
    backend: RobotBackend, make_backend: Callable[[], RobotBackend], robots: int
) -> Iterator[RobotBackend | SimulatorPool]:
    """What :func:`~.rollout.evaluate_policy` should step: ``backend`` itself (one robot,
    the serial path) when ``robots`` is 1 or ``backend`` is not a simulator, else a
    :class:`SimulatorPool` of ``robots`` copies made by ``make_backend`` (a picklable
    callable building the same robot as ``backend``)."""
    if robots < 1:
        raise ValueError(f"robots must be >= 1, got {robots}")
    if robots > 1 and not backend.is_simulator:
        log.info(
            "backend %r is not a simulator: evaluating on it alone, one episode at a time "
            "(robots=%d applies to simulated robots only)",
            backend.name,
            robots,
        )
    if robots == 1 or not backend.is_simulator:
        yield backend
        return
    log.info("evaluating on %d simulated %r robots, one process each", robots, backend.name)
    with SimulatorPool(make_backend, robots) as pool:
        yield pool
