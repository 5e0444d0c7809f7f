"""``python -m benchmarks SCENARIO... [--quick|--full]``; ``all`` runs every scenario."""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import shlex
import signal
import sys
import time
import traceback
from pathlib import Path

from benchmarks import goals, machine, plots, postgres, profiling, report
from benchmarks.bench import Bench
from benchmarks.plan import PLANS
from benchmarks.results import ScenarioResult

SCENARIOS = {
    "publish": "benchmarks.scenarios.publish",
    "publish-batch": "benchmarks.scenarios.publish_batch",
    "latency": "benchmarks.scenarios.latency",
    "drain": "benchmarks.scenarios.drain",
    "fanout": "benchmarks.scenarios.fanout",
    "scale": "benchmarks.scenarios.scale",
    "peers": "benchmarks.scenarios.peers",
    "outbox": "benchmarks.scenarios.outbox",
}
RESULTS = Path(__file__).parent / "results"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run amebo's benchmark scenarios."
    )
    parser.add_argument(
        "scenarios",
        nargs="+",
        choices=[*SCENARIOS, "all"],
        metavar="SCENARIO",
        help=f"one or more of: all, {', '.join(SCENARIOS)}",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        dest="mode",
        action="store_const",
        const="quick",
        help="short runs, every scenario in under two minutes (default)",
    )
    size.add_argument(
        "--full",
        dest="mode",
        action="store_const",
        const="full",
        help="long runs and a 10,000,000-event log for the scale scenario",
    )
    parser.add_argument(
        "--out", type=Path, help="results folder (default: benchmarks/results/<time>)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample amebo serve with py-spy and rank SQL with pg_stat_statements (if loaded)",
    )
    parser.set_defaults(mode="quick")
    return parser.parse_args(argv)


def run_one(bench: Bench, name: str) -> ScenarioResult:
    load = machine.load()
    started = time.monotonic()
    bench.say(f"== {name} (load average {load['loadavg_1m']})")
    bench.profiles = {}
    statements_unavailable = (
        profiling.reset_statements(bench.server.admin_url) if bench.profile else None
    )
    try:
        result: ScenarioResult = importlib.import_module(SCENARIOS[name]).run(bench)
    except Exception as error:  # one broken scenario must not lose the others' results
        (bench.logs / f"{name}-error.txt").write_text(traceback.format_exc())
        result = ScenarioResult(name, skipped=f"failed: {type(error).__name__}: {error}")
    result.started_load = load
    result.seconds = time.monotonic() - started
    if bench.profile:
        result.data["py-spy"] = bench.profiles
        result.data["pg_stat_statements"] = statements_unavailable or profiling.top_statements(
            bench.server.admin_url
        )
    if result.skipped:
        bench.say(f"   {name}: {result.skipped}")
    else:
        for figure in result.figures[:12]:
            value = "-" if figure.value is None else f"{figure.value:,.2f}"
            bench.say(f"   {figure.name}: {value} {figure.unit}")
    return result


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds the scenario, so its processes and database go too


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    args = parse(sys.argv[1:] if argv is None else argv)
    names = list(SCENARIOS) if "all" in args.scenarios else list(dict.fromkeys(args.scenarios))
    plan = PLANS[args.mode]
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or RESULTS / f"{stamp}-{plan.mode}"
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with postgres.server() as server:
        meta = {
            "started": stamp,
            "mode": plan.mode,
            "command": "python -m benchmarks " + shlex.join(sys.argv[1:] if argv is None else argv),
            "machine": machine.describe(),
            "postgres": server.describe(),
            "revision": machine.revision(),
            "plan": plan.__dict__,
        }
        bench = Bench(
            plan,
            server,
            out,
            show_progress=not args.no_progress and sys.stderr.isatty(),
            profile=args.profile,
        )
        for name in names:
            bench.done[name] = run_one(bench, name)
    meta["seconds"] = time.monotonic() - started
    verdicts = goals.evaluate(bench.done)
    made = plots.write(out, bench.done)
    path = report.write(out, meta, bench.done, verdicts, made)
    print("\n".join(report.goals_table(verdicts)))
    print(f"\nreport: {os.path.relpath(path)} ({meta['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
