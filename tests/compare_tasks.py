"""A task for the compare tests that runs until killed (imported by spawned task processes)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from embedcraft.compare import Outcome, Task


@dataclass
class PidThenSleepTask(Task):
    """Writes its process id to `path`, then sleeps far longer than any test waits."""

    kind: ClassVar[str] = "sleep"
    main: ClassVar[str] = "seconds"
    path: str = ""

    def run(self, encoder: object) -> Outcome:
        Path(self.path).write_text(str(os.getpid()), encoding="utf-8")
        time.sleep(600)
        return Outcome({"seconds": 600.0})
