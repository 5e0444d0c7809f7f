"""The written report: ``results.json`` (everything) and ``report.md`` (tables and plots)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.goals import Verdict
from benchmarks.results import ScenarioResult


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def _table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    if not rows:
        return []
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_number(row.get(c)) for c in columns) + " |" for row in rows]
    return lines


def _verdict(verdict: Verdict) -> str:
    if verdict.met is None:
        return "not measured"
    return "met" if verdict.met else "**missed**"


def goals_table(verdicts: Sequence[Verdict]) -> list[str]:
    rows = [
        {
            "goal": v.goal,
            "target": v.target,
            "measured": None if v.measured is None else f"{_number(v.measured)} {v.unit}",
            "verdict": _verdict(v),
            "how": v.how,
        }
        for v in verdicts
    ]
    return _table(rows)


def markdown(
    meta: Mapping[str, Any],
    results: Mapping[str, ScenarioResult],
    verdicts: Sequence[Verdict],
    plots: Mapping[str, list[str]],
) -> str:
    machine, postgres, revision = meta["machine"], meta["postgres"], meta["revision"]
    settings = ", ".join(f"{k}={v}" for k, v in postgres["settings"].items())
    lines = [
        f"# amebo benchmark: {meta['started']} ({meta['mode']} mode)",
        "",
        f"- Machine: {machine['cores']} cores ({machine['cpu_model']}), "
        f"{machine['memory_gib']} GiB, Linux {machine['kernel']}, Python {machine['python']}",
        f"- Load average when the run began: {machine['loadavg_1m']} (1 min), "
        f"{machine['loadavg_5m']} (5 min); other work on the machine makes figures noisy",
        f"- PostgreSQL {postgres['version']} ({postgres['origin']}): {settings}",
        f"- Revision: {revision['commit']}"
        + (" (amebo/ or sql/ modified)" if revision["amebo_or_sql_modified"] else ""),
        f"- Command: `{meta['command']}`; {meta['seconds']:.0f} s in all",
        "",
        "## Goals",
        "",
        *goals_table(verdicts),
        "",
    ]
    for name, result in results.items():
        lines += [f"## {name}", ""]
        if result.skipped:
            lines += [f"Skipped: {result.skipped}", ""]
            continue
        load = result.started_load
        lines.append(
            f"{result.seconds:.0f} s; load average at start {load.get('loadavg_1m', '?')}."
        )
        lines.append("")
        lines += _table(result.rows) or _table(
            [
                {"figure": f.name, "value": f.value, "unit": f.unit, "note": f.note}
                for f in result.figures
            ]
        )
        if result.rows:
            others = [f for f in result.figures if f.note or f.name == "serve peak RSS"]
            if others:
                lines += [
                    "",
                    *_table(
                        [
                            {"figure": f.name, "value": f.value, "unit": f.unit, "note": f.note}
                            for f in others
                        ]
                    ),
                ]
        lines.append("")
        lines += [f"- {note}" for note in result.notes]
        if result.notes:
            lines.append("")
        lines += [f"![{file}]({file})" for file in plots.get(name, [])]
        lines.append("")
        lines += _profile(result)
    if "memory" in plots:
        lines += ["## serve memory", "", "![serve-rss.png](serve-rss.png)", ""]
    return "\n".join(lines)


def _profile(result: ScenarioResult) -> list[str]:
    lines: list[str] = []
    statements = result.data.get("pg_stat_statements")
    if isinstance(statements, str):
        lines += [f"Profile, SQL: {statements}", ""]
    elif statements:
        lines += ["Profile, SQL (pg_stat_statements, by total time):", "", *_table(statements), ""]
    for label, found in (result.data.get("py-spy") or {}).items():
        if "error" in found:
            lines += [f"Profile, {label}: {found['error']}", ""]
            continue
        if not found.get("samples"):
            continue
        lines += [f"Profile, amebo serve ({label}, py-spy, {found['samples']:,} samples):", ""]
        rows = [
            {"where the CPU was (leaf) %": share, "frame": frame}
            for share, frame in found["leaf"][:10]
        ]
        lines += [*_table(rows), ""]
        rows = [
            {"in amebo, inclusive %": share, "frame": frame}
            for share, frame in found["amebo_inclusive"][:12]
        ]
        lines += [*_table(rows), ""]
    return lines


def write(
    out: Path,
    meta: Mapping[str, Any],
    results: Mapping[str, ScenarioResult],
    verdicts: Sequence[Verdict],
    plots: Mapping[str, list[str]],
) -> Path:
    document = {
        **meta,
        "goals": [dataclasses.asdict(v) for v in verdicts],
        "scenarios": {name: dataclasses.asdict(r) for name, r in results.items()},
    }
    (out / "results.json").write_text(json.dumps(document, indent=1, default=str))
    report = out / "report.md"
    report.write_text(markdown(meta, results, verdicts, plots))
    return report
