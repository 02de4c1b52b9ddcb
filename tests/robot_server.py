"""A robot server (`python -m fog_pipeline.serve_robot`) on loopback, for the tests that
drive a robot over the network: start it, wait until it answers, stop it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from fog_pipeline.core.envs.remote import RemoteBackend, RemoteConfig, RobotTimeoutError

STARTUP_S = 30.0  # a bound on the server's start (imports) on a busy 2-core machine


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    log: Path, width: int, height: int, idle_timeout_s: float = 2.0, verbose: bool = False
) -> Server:
    """Serve the Push-T simulator at ``width`` x ``height``; its log goes to ``log``."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "fog_pipeline.serve_robot", "--backend", "pusht"),
        *("--host", "127.0.0.1", "--port", str(port), "--idle-timeout", str(idle_timeout_s)),
        *("--option", f"width={width}", "--option", f"height={height}"),
        *(["--verbose"] if verbose else []),
    ]
    # The log goes to a file: a pipe nobody reads would block the server once full.
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    server = Server(process, port, log)
    deadline = time.monotonic() + STARTUP_S
    while True:
        if process.poll() is not None:
            pytest.fail(f"the robot server exited ({process.returncode}):\n{log.read_text()}")
        try:
            config = RemoteConfig(host="127.0.0.1", port=port, connect_timeout_s=0.5)
            RemoteBackend(config).close()
            return server
        except RobotTimeoutError:
            if time.monotonic() > deadline:
                end_server(server)
                pytest.fail(f"the robot server did not answer in {STARTUP_S} s:\n{log.read_text()}")


def end_server(server: Server) -> int:
    """Stop the server (SIGTERM, then SIGKILL if it hangs); returns its exit status."""
    server.process.send_signal(signal.SIGCONT)  # in case a test froze it
    server.process.terminate()
    try:
        return server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        return server.process.wait(timeout=10)
