"""A comparison as a table (terminal, markdown, CSV) and as a quality-versus-speed plot."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from .._files import atomic_file
from ..errors import missing_dependency
from ._runner import Comparison

__all__ = ["plot_quality_speed", "quality_summary", "to_csv", "to_markdown", "to_text"]

SPEED = "speed"


def _columns(result: Comparison) -> list[tuple[str, str]]:
    """(task, score) pairs in task order, each score once, as they appear in the cells."""
    columns: list[tuple[str, str]] = []
    for task in result.tasks:
        for cell in result.cells:
            if cell.task == task:
                columns += [(task, s) for s in cell.scores if (task, s) not in columns]
    return columns


def _header(task: str, score: str) -> str:
    return score if task == SPEED else f"{task} {score}"


def _rows(result: Comparison) -> tuple[list[str], list[list[str]]]:
    columns = _columns(result)
    header = ["encoder", *(_header(t, s) for t, s in columns), "peak MiB"]
    rows = []
    for encoder in result.encoders:
        row = [encoder]
        for task, score in columns:
            cell = result.cell(encoder, task)
            if score in cell.scores:
                value = cell.scores[score]
                row.append(f"{value:.0f}" if score in ("texts/s", "images/s") else f"{value:.2f}")
            else:
                row.append("error" if cell.error else "-")
        peak = result.peak_mib(encoder)
        row.append("n/a" if peak is None else f"{peak:.0f}")
        rows.append(row)
    return header, rows


def _footnotes(result: Comparison) -> list[str]:
    notes = []
    for cell in result.cells:
        if cell.skipped:
            notes.append(f"{cell.encoder}, {cell.task}: skipped, {cell.skipped}")
        elif cell.error:
            notes.append(f"{cell.encoder}, {cell.task}: error, {cell.error}")
        elif cell.note:
            notes.append(f"{cell.encoder}, {cell.task}: {cell.note}")
    return notes


def to_text(result: Comparison) -> str:
    """An aligned plain-text table for the terminal, with skips and notes below it."""
    header, rows = _rows(result)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            v.ljust(w) if i == 0 else v.rjust(w)
            for i, (v, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = _footnotes(result)
    return "\n".join(lines + (["", *notes] if notes else []))


def to_markdown(result: Comparison) -> str:
    """A GitHub-flavoured markdown table, with skips and notes as a list below it."""
    header, rows = _rows(result)
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    notes = _footnotes(result)
    return "\n".join(lines + (["", *(f"- {n}" for n in notes)] if notes else [])) + "\n"


def to_csv(result: Comparison) -> str:
    """One line per (encoder, task, score) with full precision, plus seconds and peak memory."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["encoder", "task", "score", "value", "seconds", "peak_mib", "status"])
    for cell in result.cells:
        status = (
            f"skipped: {cell.skipped}" if cell.skipped else
            f"error: {cell.error}" if cell.error else cell.note
        )  # fmt: skip
        peak = "" if cell.peak_mib is None else f"{cell.peak_mib:.1f}"
        for score, value in cell.scores.items() or [("", math.nan)]:
            shown = "" if math.isnan(value) else repr(value)
            writer.writerow(
                [cell.encoder, cell.task, score, shown, f"{cell.seconds:.3f}", peak, status]
            )
    return out.getvalue()


def quality_summary(result: Comparison) -> tuple[dict[str, float], list[str]]:
    """Each encoder's mean main score over the quality tasks every encoder completed.

    Returns (encoder -> mean, the tasks averaged). Tasks some encoder skipped are left out,
    so every mean is over the same tasks; an empty dict when no task is common to all.
    """
    common = [
        task
        for task in result.tasks
        if task != SPEED
        and all(result.main_scores[task] in result.cell(e, task).scores for e in result.encoders)
    ]
    if not common:
        return {}, []
    means = {
        e: sum(result.cell(e, t).scores[result.main_scores[t]] for t in common) / len(common)
        for e in result.encoders
    }
    return means, common


def plot_quality_speed(result: Comparison, path: str | os.PathLike[str]) -> Path:
    """A PNG: texts/s (log scale) against the mean quality score, one labelled point each."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise missing_dependency("matplotlib", "plot", "the comparison plot") from None
    means, common = quality_summary(result)
    points = [
        (e, result.cell(e, SPEED).scores["texts/s"], means[e])
        for e in result.encoders
        if e in means and SPEED in result.tasks and "texts/s" in result.cell(e, SPEED).scores
    ]
    if not points:
        from ..errors import InputError

        raise InputError(
            "the plot needs the speed task and a quality task that every encoder completed"
        )
    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    ax.scatter([p[1] for p in points], [p[2] for p in points], s=60, color="#3465a4", zorder=3)
    for name, x, y in points:
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8.5)
    ax.set_xscale("log")
    ax.set_xlabel("encode speed, texts per second (log scale)")
    ax.set_ylabel("mean score (0-100)")
    ax.set_title("Quality versus speed", fontsize=12)
    fig.text(0.5, 0.005, "mean over " + ", ".join(common), ha="center", va="bottom", fontsize=7.5)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    target = Path(path)
    with atomic_file(target) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return target
