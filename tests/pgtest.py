"""A throw-away PostgreSQL 16 for the tests, from the `pgserver` wheel's bundled binaries.

PostgreSQL refuses to run as root, and CI runs as root: then the cluster is created and started
as `nobody` (through `runuser`) in a temporary folder that `nobody` owns. When the binaries are
not reachable by `nobody` (a checkout under /root), they are copied there first (~35 MB).
No network: the server listens on 127.0.0.1 and a private socket folder; `fsync=off` because a
test cluster is thrown away.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

UNPRIVILEGED_USER = "nobody"
START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir() -> Path:
    # Found, not imported: importing pgserver sets up things these tests do not use.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("PostgreSQL tests need the dev extra: pip install -e '.[dev]'")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass
class PgCluster:
    root: Path
    bindir: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        """The server's maintenance database; `url_for(name)` for another one."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, tool: str, *args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, str(self.bindir / tool), *args], check=True,
                              capture_output=True, text=True, **kw)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _usable_by(user: list[str], binary: Path) -> bool:
    try:
        subprocess.run([*user, str(binary), "--version"], check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError):
        return False
    return True


def start_postgres() -> PgCluster:
    """initdb + pg_ctl start; returns once the server accepts connections."""
    bindir = pg_bindir()
    root = Path(tempfile.mkdtemp(prefix="alvh-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", UNPRIVILEGED_USER, "--"]
        shutil.chown(root, UNPRIVILEGED_USER)
        root.chmod(0o755)
        if not _usable_by(as_user, bindir / "initdb"):
            shutil.copytree(bindir.parent, root / "pginstall", symlinks=True)
            bindir = root / "pginstall" / "bin"
    sock = root / "sock"
    for folder in (sock,):
        folder.mkdir()
        if as_user:
            shutil.chown(folder, UNPRIVILEGED_USER)
    pg = PgCluster(root, bindir, _free_port(), as_user)
    data = str(root / "data")
    pg.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
           "--no-sync", "--locale=C")
    options = (f"-p {pg.port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
    try:
        pg.run("pg_ctl", "-D", data, "-o", options, "-l", str(root / "server.log"), "-w",
               "-t", str(START_TIMEOUT_S), "start")
    except subprocess.CalledProcessError as err:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {err.stderr}\n{log}") from err
    return pg
