"""Run every task on every encoder: each pair in a fresh process, so peak memory is its own.

A fresh process per (encoder, task) pair gives each task a fresh encoder (a fitting encoder is
fitted on that task's data alone) and an honest peak memory: the growth of the process's
peak resident set over what it held before loading the encoder. `isolate=False` runs in this
process instead (faster to start, for tests and small runs; memory is then not measured).
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import resource
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..cache import VectorCache, caching, resolve_cache
from ..encoders.base import Encoder
from ..encoders.contract import CacheSetting
from ..errors import EmbedcraftError, InputError
from ._tasks import CannotRun, Task

__all__ = ["Cell", "Comparison", "EncoderSpec", "compare_encoders"]

EncoderSpec = str | Encoder
"""A catalog name, a saved-encoder or word-vectors path, or an encoder object."""


@dataclass
class Cell:
    """One task's result for one encoder: scores, or why there are none."""

    encoder: str
    task: str
    scores: dict[str, float] = field(default_factory=dict)
    note: str = ""
    skipped: str = ""
    error: str = ""
    seconds: float = 0.0
    peak_mib: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


@dataclass
class Comparison:
    """All cells of a run, in encoder order then task order, with the tasks' main scores."""

    encoders: list[str]
    tasks: list[str]
    main_scores: dict[str, str]
    """Task title -> the score that stands for it (for the plot)."""
    cells: list[Cell]

    def cell(self, encoder: str, task: str) -> Cell:
        """The cell of one encoder and task."""
        for c in self.cells:
            if c.encoder == encoder and c.task == task:
                return c
        raise KeyError((encoder, task))

    def peak_mib(self, encoder: str) -> float | None:
        """The largest peak memory over the encoder's tasks (None when not measured)."""
        peaks = [c.peak_mib for c in self.cells if c.encoder == encoder and c.peak_mib is not None]
        return max(peaks) if peaks else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "encoders": self.encoders,
            "tasks": self.tasks,
            "main_scores": self.main_scores,
            "peak_mib": {e: self.peak_mib(e) for e in self.encoders},
            "cells": [c.to_dict() for c in self.cells],
        }


def _encoder_name(spec: EncoderSpec) -> str:
    """How the table names an encoder: a catalog name as given, a path by its last part."""
    if isinstance(spec, str):
        path = Path(spec).expanduser()
        return path.name if path.exists() and path.name else spec
    return spec.name


def _fresh(spec: EncoderSpec) -> Encoder:
    """A new encoder for one task: loaded by name or path, or a deep copy of the object."""
    if isinstance(spec, str):
        from ..catalog import load_encoder

        return load_encoder(spec)
    return copy.deepcopy(spec)


def _peak_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _exit_with_parent(parent: int) -> None:
    """In a task process: exit as soon as the comparing process is gone (killed, say)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="embedcraft-parent-watch").start()


def _run_cell(
    spec: EncoderSpec,
    task: Task,
    measure_memory: bool,
    parent: int | None = None,
    cache: VectorCache | None = None,
) -> Cell:
    """Run one task on a fresh encoder (its encodes through `cache`, when given); errors
    become the cell's message, not a crash."""
    if parent is not None:
        _exit_with_parent(parent)
    cell = Cell(_encoder_name(spec), task.title)
    before = _peak_kib()
    t0 = time.perf_counter()
    try:
        encoder = _fresh(spec)
        if encoder.input_kind is not task.input_kind:
            raise CannotRun(
                f"{cell.encoder} reads {encoder.input_kind.value}s; this task gives "
                f"{task.input_kind.value}s"
            )
        with caching(cache):
            outcome = task.run(encoder)
        cell.scores, cell.note = dict(outcome.scores), outcome.note
    except CannotRun as exc:
        cell.skipped = str(exc)
    except (EmbedcraftError, OSError, ValueError, MemoryError) as exc:
        cell.error = str(exc) or type(exc).__name__
    cell.seconds = time.perf_counter() - t0
    if measure_memory:
        cell.peak_mib = max(0, _peak_kib() - before) / 1024
    return cell


def compare_encoders(
    encoders: Sequence[EncoderSpec],
    tasks: Sequence[Task],
    *,
    isolate: bool = True,
    progress: bool = False,
    cache: CacheSetting = None,
) -> Comparison:
    """Every task on every encoder; see the module docstring for what `isolate` changes.

    `cache` (see `embedcraft.cache`; None follows an enclosing `caching` block) serves the
    quality tasks' vectors; the speed task always encodes, so its texts/s stay true.

    Unknown encoder names fail at once, before any task runs. A task that fails for one
    encoder is reported in its cell (`error`) and the run goes on.
    """
    if not encoders:
        raise InputError("give at least one encoder to compare")
    if not tasks:
        raise InputError("give at least one task (word pairs, STS pairs, retrieval data, ...)")
    names = [_encoder_name(e) for e in encoders]
    if len(set(names)) != len(names):
        raise InputError(f"an encoder is named twice: {', '.join(names)}")
    titles = [t.title for t in tasks]
    if len(set(titles)) != len(titles):
        raise InputError(f"two tasks have the same title: {', '.join(titles)}; give labels")
    for spec in encoders:  # unknown names fail here, not in the middle of the run
        if isinstance(spec, str):
            _fresh(spec)
    if isolate and not all(isinstance(e, str) for e in encoders):
        raise InputError("isolate=True runs encoders in fresh processes: give names or paths")
    store = resolve_cache(cache)
    cells = []
    bar = tqdm(total=len(encoders) * len(tasks), disable=not progress, desc="compare")
    context = multiprocessing.get_context("spawn")
    try:
        for spec in encoders:
            for task in tasks:
                bar.set_postfix_str(f"{_encoder_name(spec)} / {task.title}")
                if isolate:
                    with ProcessPoolExecutor(1, mp_context=context) as pool:
                        job = pool.submit(_run_cell, spec, task, True, os.getpid(), store)
                        cells.append(job.result())
                else:
                    cells.append(_run_cell(spec, task, False, None, store))
                bar.update()
    finally:
        bar.close()
    main = {t.title: t.main for t in tasks}
    return Comparison(names, titles, main, cells)
