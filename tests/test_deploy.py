"""The deployment files, read as an operator's tools would (docker itself is not available
here): compose.yaml parses and wires the bot to PostgreSQL; the Dockerfile runs as a non-root
user with the data folder in a volume and `alvh health` as its HEALTHCHECK."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_dockerfile_runs_as_a_non_root_user_with_a_data_volume_and_a_healthcheck():
    stage = _final_stage()
    users = [args for word, args in stage if word == "USER"]
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith("0:")
    user_created = " ".join(args for word, args in stage if word == "RUN")
    assert "useradd" in user_created and users[-1] in user_created
    volumes = [json.loads(args) for word, args in stage if word == "VOLUME"]
    env = " ".join(args for word, args in stage if word == "ENV")
    data_dir = re.search(r"ALVH_DATA_DIR=(\S+)", env)[1]
    assert [data_dir] in volumes
    [health] = [args for word, args in stage if word == "HEALTHCHECK"]
    command = json.loads(health.split("CMD", 1)[1].strip())
    assert command == ["alvh", "health"]
    [cmd] = [args for word, args in stage if word == "CMD"]
    assert json.loads(cmd) == ["alvh", "start"]
    # the image installs the wheel (templates inside), with the PostgreSQL driver
    assert any("alvh-bot[postgres]" in shlex.split(args) for word, args in stage if word == "RUN")


def test_compose_file_runs_the_bot_on_postgresql():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"bot", "postgres"}
    bot, pg = services["bot"], services["postgres"]
    assert bot["build"] == "."
    url = bot["environment"]["DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert pg["image"].startswith("postgres:16")
    data_dir = bot["environment"]["ALVH_DATA_DIR"]
    assert any(v.split(":")[1] == data_dir for v in bot["volumes"])
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert named <= set(compose["volumes"])
