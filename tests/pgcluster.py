"""A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` as the `postgres` user (the
server refuses root) in a directory that user owns, listening on a Unix socket only.

    with Cluster.start() as pg:
        url = pg.new_database()  # postgresql://...?host=<socket dir>, a fresh empty database
        pg.stop_immediate(); pg.restart()  # `pg_ctl -m immediate`, then start again

`Cluster.available()` says why not when no server binaries are found.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

SERVER_USER = "postgres"


def find_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class Cluster:
    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir, self.root = bindir, root
        self.data, self.socket_dir = root / "data", root / "sock"
        self._names = itertools.count(1)

    @staticmethod
    def available() -> str | None:
        """None when a cluster can be started here, else the reason it cannot."""
        if find_bindir() is None:
            return "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)"
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"no {SERVER_USER!r} system user to run the server as"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root without runuser"
        return None

    @classmethod
    def start(cls) -> Cluster:
        bindir = find_bindir()
        assert bindir is not None, Cluster.available()
        root = Path(tempfile.mkdtemp(prefix="emitter-pg-"))
        cluster = cls(bindir, root)
        cluster.socket_dir.mkdir()
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            for path in (root, cluster.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        cluster._as_server("initdb", "-D", str(cluster.data), "-A", "trust", "-U", "emitter",
                           "--no-sync", "-E", "UTF8")
        conf = (f"listen_addresses = ''\nunix_socket_directories = '{cluster.socket_dir}'\n"
                "max_connections = 200\nfsync = on\nshared_buffers = 64MB\n")
        cluster._as_server("sh", "-c", f"cat >> {cluster.data}/postgresql.conf <<'X'\n{conf}X")
        cluster.restart()
        return cluster

    def _as_server(self, program: str, *args: str) -> None:
        exe = str(self.bindir / program) if (self.bindir / program).exists() else program
        cmd = [exe, *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stdout}{done.stderr}")

    def restart(self) -> None:
        self._as_server("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
                        "-w", "-t", "60", "start")

    def stop_immediate(self) -> None:
        self._as_server("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self._as_server("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://emitter@/{dbname}?host={self.socket_dir}"

    def new_database(self) -> str:
        """A fresh empty database; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
