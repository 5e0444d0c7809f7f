"""The ``amebo`` command as a user runs it: a real subprocess, its output read as it comes.

Waiting is on what the process prints (or on a condition polled with a deadline), never on
a sleep; every wait has a deadline, and a process still alive at the end of a test is killed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

# The console script the package installs, as `make run` calls it; `python -m amebo` if the
# package was not installed with its scripts.
_SCRIPT = Path(sys.executable).with_name("amebo")
COMMAND: tuple[str, ...] = (str(_SCRIPT),) if _SCRIPT.exists() else (sys.executable, "-m", "amebo")
ADMIN_TOKEN = "acceptance-admin-token-0123456789"


def environment(**settings: str | None) -> dict[str, str]:
    """This process's environment without any AMEBO_ setting, then ``settings`` on top."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AMEBO_")}
    env["AMEBO_LOG_LEVEL"] = "warning"
    for name, value in settings.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run(
    args: Sequence[str], env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


class Amebo:
    """A running ``amebo`` process whose stdout and stderr lines are kept as they arrive."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.out: list[str] = []
        self.err: list[str] = []
        self._changed = asyncio.Condition()
        assert process.stdout is not None and process.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(process.stdout, self.out)),
            asyncio.create_task(self._read(process.stderr, self.err)),
        ]

    @classmethod
    async def start(cls, args: Sequence[str], env: Mapping[str, str]) -> Amebo:
        process = await asyncio.create_subprocess_exec(
            *COMMAND,
            *args,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def _read(self, stream: asyncio.StreamReader, lines: list[str]) -> None:
        while line := await stream.readline():
            async with self._changed:
                lines.append(line.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    def output(self) -> str:
        return "\n".join(["--- stdout", *self.out, "--- stderr", *self.err])

    async def wait_for_line(self, wanted: Callable[[str], bool], timeout: float = 60) -> str:
        """The first stdout line ``wanted`` accepts; fails if the process exits first."""

        def found() -> str | None:
            return next((line for line in self.out if wanted(line)), None)

        def settled() -> bool:
            return found() is not None or all(reader.done() for reader in self._readers)

        try:
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(settled), timeout)
        except TimeoutError:
            raise AssertionError(f"no such line within {timeout}s\n{self.output()}") from None
        line = found()
        if line is None:
            await self.process.wait()
            raise AssertionError(f"amebo exited ({self.process.returncode})\n{self.output()}")
        return line

    async def listening(self, timeout: float = 90) -> str:
        """The URL amebo says it listens on (the parent's line, once it accepts)."""
        line = await self.wait_for_line(
            lambda text: text.startswith("amebo: listening on "), timeout
        )
        return line.removeprefix("amebo: listening on ").strip()

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            stacks = _stacks(self.pid)
            self.process.kill()
            await self.process.wait()
            raise AssertionError(
                f"amebo did not stop within {timeout}s\n{self.output()}\n{stacks}"
            ) from None
        await asyncio.wait_for(asyncio.gather(*self._readers), timeout)
        return code

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    async def kill(self) -> None:
        """SIGKILL, as an OOM killer would; the ``--workers`` children see their parent go."""
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


def _stacks(pid: int) -> str:
    """Where a stuck process is, if py-spy happens to be installed (it is not required)."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        return ""
    dumped = subprocess.run(
        [str(spy), "dump", "--pid", str(pid)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return dumped.stdout + dumped.stderr
