"""docker-compose.yml stays in step with the settings amebo reads (no daemon runs here)."""

from __future__ import annotations

import inspect
from pathlib import Path

import yaml

from amebo import config

ROOT = Path(__file__).resolve().parents[2]


def test_the_compose_file_sets_only_settings_amebo_reads() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    amebo = compose["services"]["amebo"]
    read = inspect.getsource(config)
    for name in amebo["environment"]:
        assert f'"{name}"' in read, f"{name} in docker-compose.yml is not a setting"
    assert amebo["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "@postgres:5432/" in amebo["environment"]["AMEBO_DATABASE_URL"]


def test_the_image_serves_on_all_interfaces_with_the_sql_it_needs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY sql ./sql" in dockerfile
    assert '"serve", "--address", "0.0.0.0:8701"' in dockerfile
