"""The installable product: build the wheel, install it into a fresh venv, use its console.

No network: the wheel is built without build isolation (setuptools and wheel come from the dev
extra), and the fresh venv reaches the already-installed dependencies through a `.pth` line
naming this interpreter's site-packages. A path line in a `.pth` adds the folder but runs none
of its own `.pth` files, so the checkout's editable install cannot leak in: what runs is the
wheel. Before this, the installed console answered "Something went wrong" (templates missing)
and put its database in site-packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE = ("bot", "core", "templates", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "var", "*.egg-info", "build")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _run(*args, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the built wheel installed; returns its `bin` folder."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in SOURCE:  # a clean copy: the build writes build/ and *.egg-info beside it
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=IGNORED)
        else:
            shutil.copy(path, src / name)
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", root / "dist", src)
    [wheel] = (root / "dist").glob("alvh_bot-*.whl")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    purelib = Path(_run(venv / "bin" / "python", "-c",
                        "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                        cwd=root).stdout.strip())
    (purelib / "_alvh_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
         "--no-deps", "--no-index", wheel)
    return venv / "bin"


def _clean_env(tmp: Path, **extra: str) -> dict[str, str]:
    drop = ("TELEGRAM_BOT_TOKEN", "DATABASE_URL", "ALVH_DATA_DIR", "ALVH_TEMPLATES_DIR",
            "PYTHONPATH", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "HOME": str(tmp / "home"), "XDG_DATA_HOME": str(tmp / "xdg"), **extra}


SESSION = (
    "/start\n"
    "/add SPXW 2026-08-21 5600/5650/6150/6200 x2 @4.35 wheel\n"
    "/check\n"
)


def _console(bin_dir: Path, cwd: Path, env: dict[str, str]) -> str:
    cwd.mkdir(parents=True, exist_ok=True)
    result = _run(bin_dir / "alvh", "console", input=SESSION, cwd=cwd, env=env, timeout=300)
    assert "Traceback" not in result.stderr and "went wrong" not in result.stdout
    return result.stdout


def test_the_installed_wheel_runs_the_console_from_its_own_files(installed, tmp_path):
    site = Path(_run(installed / "python", "-c", "import bot, pathlib; "
                     "print(pathlib.Path(bot.__file__).parent)", cwd=tmp_path).stdout.strip())
    assert REPO not in site.parents and (site / "templates" / "start.html.j2").is_file()

    out = _console(installed, tmp_path / "work", _clean_env(tmp_path))
    assert "Welcome" in out
    assert "Saved #1" in out and "$870" in out  # 2 × 4.35 × 100
    check = out.split("> /check", 1)[1]
    assert "#1" in check and "EDR" in check and "7,482.71" in check  # the sample's SPX close
    # The database went to the platform's data folder, nothing into site-packages or the cwd.
    assert (tmp_path / "xdg" / "alvh-bot" / "console.db").is_file()
    assert not list(site.parent.rglob("*.db")) and not (site / "var").exists()
    assert not list((tmp_path / "work").iterdir())


def test_alvh_data_dir_and_a_dotenv_in_the_working_directory(installed, tmp_path):
    data = tmp_path / "data"
    work = tmp_path / "work"
    work.mkdir()
    env = _clean_env(tmp_path, ALVH_DATA_DIR=str(data))
    # .env of the current directory is read: a bad value there stops the console, by name
    (work / ".env").write_text("TIMEZONE=Mars/Olympus\n")
    bad = subprocess.run([installed / "alvh", "console"], input="/start\n", cwd=work, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "TIMEZONE 'Mars/Olympus'" in bad.stderr + bad.stdout
    (work / ".env").write_text("TIMEZONE=Europe/London\n")
    out = _console(installed, work, env)
    assert "Saved #1" in out
    assert (data / "console.db").is_file() and not (tmp_path / "xdg").exists()
    assert sorted(p.name for p in work.iterdir()) == [".env"]
