"""The context every scenario receives: its plan, the database server, where output goes, the
progress display, and the figures earlier scenarios of the same run produced."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.plan import Plan
from benchmarks.postgres import Server
from benchmarks.results import ScenarioResult


@dataclasses.dataclass
class Bench:
    plan: Plan
    server: Server
    out: Path
    done: dict[str, ScenarioResult] = dataclasses.field(default_factory=dict)
    show_progress: bool = True
    profile: bool = False
    # py-spy's findings per amebo serve process of the running scenario, by rig label.
    profiles: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def logs(self) -> Path:
        path = self.out / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def say(self, message: str) -> None:
        tqdm.write(message)

    def progress(self, total: float, desc: str, unit: str = "it") -> tqdm[Any]:
        return tqdm(
            total=total,
            desc=desc,
            unit=unit,
            leave=False,
            disable=not self.show_progress,
            dynamic_ncols=True,
        )

    @contextlib.contextmanager
    def database(self, label: str) -> Iterator[str]:
        name = f"amebo_bench_{label.replace('-', '_')}_{os.getpid()}"
        with self.server.fresh(name) as url:
            yield url
