"""Runs the real `embedcraft` command in subprocesses for the CLI test files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def command(args: list[object]) -> list[str]:
    """The argv of `python -m embedcraft.cli ARGS`."""
    return [sys.executable, "-m", "embedcraft.cli", *map(str, args)]


def run_many(
    commands: dict[str, list[object]], cwd: Path, env: dict[str, str], timeout: float
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Start every command at once (they are independent), then collect them all."""
    procs = {
        key: subprocess.Popen(
            command(args),
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for key, args in commands.items()
    }
    results = {}
    for key, proc in procs.items():
        out, err = proc.communicate(timeout=timeout)
        results[key] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return results
