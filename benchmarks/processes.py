"""Child processes of the harness: started, waited for, sampled for memory, and stopped by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Child:
    """A process the harness started; its output goes to a log file beside the results."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        full_env = {**os.environ, **(env or {})}
        self.popen = subprocess.Popen(
            list(argv), stdout=self._log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()


@contextlib.contextmanager
def child(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[Child]:
    process = Child(name, argv, log_dir, env, cwd)
    try:
        yield process
    finally:
        process.stop()


def wait_http(url: str, process: Child, timeout: float = 60.0) -> None:
    """Until ``url`` answers at all (any status): the process is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited early:\n{process.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not answer {url} within {timeout:.0f}s")


class MemorySampler:
    """Samples the resident memory of a process and its children in a background thread."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self.samples: list[tuple[float, float]] = []  # (monotonic, MB)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> float:
        try:
            root = psutil.Process(self._pid)
            total = root.memory_info().rss
            for kid in root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += kid.memory_info().rss
        except psutil.Error:
            return 0.0
        return total / 1e6

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.samples.append((time.monotonic(), self._rss()))

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def peak_mb(self) -> float:
        return max((mb for _, mb in self.samples), default=0.0)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process and its live children so far."""
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = times.user + times.system
        for kid in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                kid_times = kid.cpu_times()
                total += kid_times.user + kid_times.system
    except psutil.Error:
        return 0.0
    return total


def backend_cpu_seconds(database: str) -> float:
    """CPU so far of the PostgreSQL backends serving ``database`` on this host (their process
    titles name it). Backends that ended meanwhile are missed, so this is a lower bound."""
    total = 0.0
    for process in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            title = " ".join(process.info["cmdline"] or [])
            if title.startswith("postgres:") and f" {database} " in f"{title} ":
                times = process.cpu_times()
                total += times.user + times.system
    return total
