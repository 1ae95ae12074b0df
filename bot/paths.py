"""Where the bot keeps its files: the data folder (database, charts, the console's files).

`ALVH_DATA_DIR` when set; else, running from a source checkout, the checkout's `var/` (so
`make run`, `make test` and `.venv/bin/alvh ...` keep their files where they always were); else,
installed from the wheel, the platform's user data folder (platformdirs: e.g.
`~/.local/share/alvh-bot` on Linux). Never the installed package: site-packages is read-only for
a service user and replaced by every upgrade (docs/operations.md).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "ALVH_DATA_DIR"
APP_NAME = "alvh-bot"
PACKAGE_PARENT = Path(__file__).resolve().parents[1]


def source_checkout() -> Path | None:
    """The checkout this code runs from (its pyproject.toml names the project), else None."""
    project = PACKAGE_PARENT / "pyproject.toml"
    if project.is_file() and f'name = "{APP_NAME}"' in project.read_text(encoding="utf-8"):
        return PACKAGE_PARENT
    return None


def data_dir(env: dict[str, str] | None = None, *, create: bool = True) -> Path:
    """The data folder (made on first use unless `create` is False)."""
    source = os.environ if env is None else env
    raw = (source.get(DATA_DIR_ENV) or "").strip()
    checkout = source_checkout()
    if raw:
        folder = Path(raw).expanduser().resolve()
    elif checkout is not None:
        folder = checkout / "var"
    else:
        from platformdirs import user_data_dir

        folder = Path(user_data_dir(APP_NAME, appauthor=False))
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def in_data_dir(path: str | Path, env: dict[str, str] | None = None) -> Path:
    """An absolute path as is; a relative one inside the data folder (its folder made)."""
    path = Path(path).expanduser()
    if not path.is_absolute():
        path = data_dir(env) / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
