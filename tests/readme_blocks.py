"""The runnable parts of README.md: every shell command and every Python block, with its line.

tests/test_readme.py runs them; this module only reads the README, so a README edit is picked
up the next time the tests run. Shell blocks (```bash, ```sh, ```shell, ```console) give one
command per logical line: `\\` continuations are joined, comments (`# ...` outside quotes)
dropped, and in ```console blocks only the `$ ` lines count (the rest is output). A fenced
block in any other language is reported, so a new kind of block is never silently ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "IGNORED_LANGUAGES",
    "PYTHON_LANGUAGES",
    "SHELL_LANGUAGES",
    "Block",
    "Command",
    "read_readme",
    "shell_commands",
    "strip_comment",
]

SHELL_LANGUAGES = ("bash", "sh", "shell", "console")
PYTHON_LANGUAGES = ("python", "py")
IGNORED_LANGUAGES = ("json", "text", "")
"""Fences that are data or output, not something to run (a bare ``` is output too)."""

_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")


@dataclass(frozen=True)
class Block:
    """One fenced block: its language, the line of its first content line (1-based), its text."""

    language: str
    line: int
    text: str


@dataclass(frozen=True)
class Command:
    """One shell command: the README line it starts on and its text, continuations joined."""

    line: int
    text: str

    @property
    def test_id(self) -> str:
        """A short pytest id naming the line and the command's first words."""
        words = re.sub(r"[^\w.=-]+", " ", self.text).split()[:4]
        return f"L{self.line}-" + "-".join(words)


def read_readme(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opened = _FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        fence, language = opened.group(2), opened.group(3).lower()
        body: list[str] = []
        i += 1
        start = i + 1  # 1-based number of the first content line
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        blocks.append(Block(language, start, "\n".join(body) + "\n"))
        i += 1  # the closing fence
    return blocks


def strip_comment(line: str) -> str:
    """`line` without a trailing shell comment: a `#` outside quotes at the start of a word."""
    quote: str | None = None
    escaped = False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def shell_commands(block: Block) -> list[Command]:
    """The commands of a shell block, one per logical line, comments and output left out."""
    commands: list[Command] = []
    pending: list[str] = []
    first = 0
    for offset, raw in enumerate(block.text.splitlines()):
        line = raw
        if block.language == "console" and not pending:
            if not line.lstrip().startswith("$ "):
                continue  # output shown after a command
            line = line.lstrip()[2:]
        text = strip_comment(line)
        if not pending:
            first = block.line + offset
            if not text.strip():
                continue
        if text.endswith("\\"):
            pending.append(text[:-1].strip())
            continue
        pending.append(text.strip())
        commands.append(Command(first, " ".join(p for p in pending if p)))
        pending = []
    if pending:
        commands.append(Command(first, " ".join(p for p in pending if p)))
    return commands
