"""README.md runs as written: every shell command and every Python block in it, one test each.

The commands and blocks are read from README.md when the tests are collected
(tests/readme_blocks.py), so an edited README is what runs. They run in a temp folder holding
small stand-ins for the files the README names (tests/readme_standins.py: its STAND_INS table maps
each README name to what is written there), with the same flags; the benchmark data the README
reads from `../shared/data/...` is stood in for at the work folder's `../shared/data`, so those
paths run unchanged too. A command fails its test on a non-zero exit or a traceback on stderr.

Shell commands run in README order in one folder, because later ones use what earlier ones made
(`fit ... --output my-tfidf`, then `--encoder my-tfidf`); a test selected alone first runs the
commands before it. Python blocks run each in a fresh `python` in a second folder: blocks do
not build on each other beyond the first block's `import embedcraft as ec`, and the names the
README leaves to the reader (`texts`, `labels`, `col`, ...) get small values from PLACEHOLDERS,
prepended only where a block uses a name it never sets itself. Most Python blocks run in a
background thread while the shell commands run (see PythonBlocks), which keeps the file's wall
time near its CPU time over two cores.

What cannot run as written is listed, with the reason, in SHELL_RULES / PYTHON_RULES (each rule
must still match something in the README, so the lists cannot go stale). The last test prints
how many commands and blocks ran, were substituted or skipped.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from components import import_component, require_component
from readme_blocks import (
    IGNORED_LANGUAGES,
    PYTHON_LANGUAGES,
    SHELL_LANGUAGES,
    Block,
    Command,
    read_readme,
    shell_commands,
)
from readme_standins import STAND_INS, write_stand_ins

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCKS = read_readme(README)
COMMANDS = [c for b in BLOCKS if b.language in SHELL_LANGUAGES for c in shell_commands(b)]
PYTHON_BLOCKS = [b for b in BLOCKS if b.language in PYTHON_LANGUAGES]
TIMEOUT = 600  # seconds: a guard against a hang, not a speed assumption
API_KEY = "KEY"  # $KEY in the server commands, and the OpenAI block's api_key="KEY"


@dataclass(frozen=True)
class Rule:
    """What a test does instead of running a README command or block exactly as written.

    `pattern` is searched in the command or block; `replacement` (with `{port}` / `{url}`
    filled in at run time) replaces what it matched; `action` names a handler instead
    (the command is then not run as text). `why` is the reason, for the reader of this file.
    """

    pattern: str
    why: str
    replacement: str | None = None
    action: str | None = None


SHELL_RULES = [
    # make run / make test set up the venv and run the demo / the whole suite (this file
    # included): recursion and minutes. The test checks the Makefile has the target instead.
    Rule(r"^make (\w+)", "runs the setup and the suite itself", action="make-target"),
    # `serve` runs until stopped: started on a free port (its --port replaced, or added),
    # waited for until uvicorn's "Uvicorn running on" line on stderr (no sleeping), asked for
    # /health and /v1/models, then stopped with SIGINT: exit 0 and "server stopped". The server
    # with `-c docs=...` stays up for the curl commands and the OpenAI block, which talk to it.
    Rule(r"^embedcraft serve\b", "runs until stopped", action="serve"),
    Rule(r"127\.0\.0\.1:8000", "the README's server runs on a free port", "127.0.0.1:{port}"),
    # Ray: no S3 bucket and no cluster here; the same local folder as the command before,
    # a local Ray (started and stopped by the command), and as many actors as 2 CPUs place.
    Rule(r"s3://bucket/corpus/", "no S3 here: the local corpus/ folder", "corpus/"),
    Rule(r" --address ray-head:6379", "no cluster here: a local Ray starts for the run", ""),
    Rule(r"--workers 16", "16 actors do not fit on a local 2-CPU Ray", "--workers 2"),
    # compare runs each (encoder, task) pair in a fresh process: 36 Python start-ups here, about
    # 2.5 CPU-minutes on 2 cores for a dozen texts per task. --in-process runs the same encoders,
    # tasks and flags in one (the fresh-process mode is tested in tests/test_cli_compare.py).
    Rule(
        r"^(embedcraft compare -e tfidf .*)$",
        "36 fresh processes on a dozen texts: --in-process",
        r"\1 --in-process",
    ),
    # The gallery pictures are the project's own, made from the repository root into docs/;
    # here docs/ is the collection `encode --engine ray ... --collection docs/` makes.
    Rule(r"docs/gallery/", "the gallery goes to gallery/ (docs/ is a collection here)", "gallery/"),
]

PYTHON_RULES = [
    # The PostgreSQL collection: a throwaway server (tests/pg_server.py, as tests/test_postgres.py
    # starts it); where it cannot start the block skips with the reason (fails under CI=true).
    Rule(r"postgresql://user@host/db", "a throwaway PostgreSQL", "{url}", action="postgres"),
    # The OpenAI client talks to the README's own server (the shell command with -c docs=).
    Rule(r"http://127\.0\.0\.1:8000", "the README's server runs on a free port", "{url}"),
]

PLACEHOLDERS = {
    # Names the README's Python blocks use without setting them, and the values they get.
    # _DOCS: the stand-in docs.jsonl (48 demo texts with topic, year and lang).
    "ec": "import embedcraft as ec  # the first block's import",
    "embedcraft": "import embedcraft",
    "texts": "texts = [d['text'] for d in _DOCS]",
    "corpus_texts": "corpus_texts = [d['text'] for d in _DOCS]",
    "labels": "labels = [d['topic'] for d in _DOCS]",
    "ids": "ids = [f'd{i}' for i in range(len(_DOCS))]",
    "metadata": "metadata = [{'year': d['year'], 'lang': d['lang']} for d in _DOCS]",
    "encoder": "encoder = _ec.load_encoder('minilm-l6')",
    # the collection of the Collections section: same folder and encoders
    "col": "col = _ec.Collection('my-docs', encoders=['bm25', 'minilm-l6'])",
    "my_vectors": "my_vectors = _ec.load_encoder('minilm-l6').encode(['how do planets form'])",
    "vectors": "vectors = _ec.load_encoder('minilm-l6-static').encode([d['text'] for d in _DOCS])",
}
_PRELUDE = (
    "import json as _json\n"
    "import embedcraft as _ec\n"
    "_DOCS = [_json.loads(line) for line in open('docs.jsonl', encoding='utf-8')]\n"
)


def _check_curl_answer(out: str, err: str) -> str | None:
    """curl -s exits 0 on any HTTP answer: the body must be JSON and not an error."""
    try:
        body = json.loads(out)
    except ValueError:
        return f"not JSON: {out[:300]!r}"
    return f"the server answered an error: {body}" if "error" in body else None


EXPECTATIONS: list[tuple[str, Callable[[str, str], str | None]]] = [
    # A few commands whose README comment promises something a zero exit does not show.
    (r"^curl ", _check_curl_answer),
    (
        r"encode -e minilm-l6 -i corpus\.jsonl -o b\.npy",
        lambda out, err: (
            None
            if "came from the embedding cache" in err
            else "the second encode did not say its vectors came from the cache"
        ),
    ),
    (
        r"search -c pics --image .* --where label=roses --json",
        lambda out, err: None if '"roses' in out else "no roses among the hits",
    ),
]


@dataclass
class Outcome:
    """A README command or block as it ran: the text run, how, and what it gave."""

    ran: str
    how: str  # "ran" | "substituted" | "skipped"
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    problem: str | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time
    cpu: float = 0.0  # CPU time of the processes it started (user + system)

    def failure(self) -> str | None:
        """Why this outcome fails its test, or None."""
        if self.returncode != 0:
            return f"exit {self.returncode}"
        if "Traceback (most recent call last)" in self.stderr:
            return "a traceback on stderr"
        return self.problem

    def report(self) -> str:
        return (
            f"ran: {self.ran}\n{self.how}; {self.failure()}\n"
            f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-5000:]}"
        )


def _run_timed(args: list[str], cwd: Path, env: dict[str, str], how: str) -> Outcome:
    """Run a process to its end (killed after TIMEOUT); its outcome with its wall and CPU time
    (its own and its waited-for children's, from wait4: other runs in other threads apart)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=err, text=True)
        guard = threading.Timer(TIMEOUT, proc.kill)
        guard.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            guard.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        ran = args[-1] if args[0] == "bash" else " ".join(args)
        outcome = Outcome(ran, how, proc.returncode, out.read(), err.read())
    outcome.seconds = time.perf_counter() - start
    outcome.cpu = usage.ru_utime + usage.ru_stime
    return outcome


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment (so EMBEDCRAFT_CACHE, set by conftest, is shared), the venv's
    bin first on PATH (so `embedcraft` is this checkout's), offline, and $KEY."""
    env = {**os.environ, **extra}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HF_HUB_OFFLINE"] = "1"
    env["KEY"] = API_KEY
    env.pop("EMBEDCRAFT_API_KEY", None)
    return env


class Server:
    """A README `embedcraft serve` command running in the background, its output (stdout and
    stderr, one stream) read line by line by a thread, so the pipe never fills."""

    def __init__(self, text: str, cwd: Path, env: dict[str, str]) -> None:
        self.port = _free_port()
        if re.search(r"--port \S+", text):
            text = re.sub(r"--port \S+", f"--port {self.port}", text)
        else:
            text += f" --port {self.port}"
        self.text = text
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            ["bash", "-c", f"exec {text}"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one stream, read by one thread
            text=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_ready(self) -> str | None:
        """Block until uvicorn says it is running (None), or why it never will."""
        while True:
            try:
                line = self.lines.get(timeout=TIMEOUT)
            except queue.Empty:
                return f"no 'Uvicorn running on' line in {TIMEOUT} s"
            if line is None:
                return "the server exited before it was running"
            if "Uvicorn running on" in line:
                return None

    def stop(self) -> Outcome:
        """SIGINT, as Ctrl-C: the server must finish with exit 0 and say it stopped."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=TIMEOUT)
        while self.lines.get(timeout=TIMEOUT) is not None:
            pass  # the drain thread has read everything
        err = "".join(self.output)
        problem = None if "server stopped" in err else "no 'server stopped' line"
        return Outcome(self.text, "substituted", self.proc.returncode, "", err, problem)


class PythonBlocks:
    """The README's Python blocks, each run in a fresh `python` in a folder of their own.

    The blocks that need no fixture (no server, no PostgreSQL) and no Ray (a second local Ray
    beside the shell commands' could be joined and shut down by them) start one after another
    in a background thread as soon as the shell commands start, so they run on the core those
    leave idle; their tests wait for them. The others run when their test comes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.outcomes: dict[int, Outcome] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readme-python")
        self._started = {
            block.line: self._pool.submit(self.run, block, block.text, "ran")
            for block in PYTHON_BLOCKS
            if not any(re.search(rule.pattern, block.text) for rule in PYTHON_RULES)
            and "embedcraft.distributed" not in block.text
        }

    def started(self, block: Block) -> Outcome | None:
        """The outcome of a block run in the background (waiting for it), else None."""
        future = self._started.get(block.line)
        return None if future is None else future.result(timeout=TIMEOUT * 2)

    def run(self, block: Block, source: str, how: str) -> Outcome:
        """Run `source` (the block, maybe substituted) after the prelude it needs."""
        script = self.folder / f"block_L{block.line}.py"
        script.write_text(_prelude(source) + source, encoding="utf-8")
        outcome = _run_timed([sys.executable, script.name], self.folder, _environment({}), how)
        self.outcomes[block.line] = outcome
        return outcome

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class ShellSession:
    """The README's shell commands run in order in one folder, each at most once."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.variables: dict[str, str] = {}
        self.outcomes: dict[int, Outcome] = {}
        self.api_server: Server | None = None

    def through(self, index: int) -> Outcome:
        """Run every command up to `index` not run yet (later ones build on them), in order."""
        for i in range(index + 1):
            if i not in self.outcomes:
                self.outcomes[i] = self._run(COMMANDS[i])
        return self.outcomes[index]

    def server(self) -> Server:
        """The README's API server (the `serve` command with -c docs=), started if need be."""
        index = next(i for i, c in enumerate(COMMANDS) if _is_api_server(c.text))
        self.through(index)
        if self.api_server is None:
            pytest.fail(f"the README's server (line {COMMANDS[index].line}) did not start")
        return self.api_server

    def close(self) -> Outcome | None:
        """Stop the API server, if it ran; its outcome."""
        if self.api_server is None:
            return None
        outcome, self.api_server = self.api_server.stop(), None
        return outcome

    def _run(self, command: Command) -> Outcome:
        text, how, notes = command.text, "ran", []
        assigned = re.fullmatch(r"(\w+)=(\S*)", text)
        if assigned:  # D=../shared/data: a variable the following commands use
            self.variables[assigned.group(1)] = assigned.group(2)
            return Outcome(text, how)
        for rule in SHELL_RULES:
            found = re.search(rule.pattern, text)
            if not found:
                continue
            if rule.action == "make-target":
                return self._make_target(text, found.group(1), rule)
            if rule.action == "serve":
                return self._serve(text, rule)
            port = self.server().port if "{port}" in (rule.replacement or "") else 0
            text = re.sub(rule.pattern, (rule.replacement or "").format(port=port), text)
            how = "substituted"
            notes.append(rule.why)
        if "--engine ray" in text:
            import_component("ray", "Ray")
        if text.startswith("curl ") and shutil.which("curl") is None:
            require_component("curl", "no curl on PATH")
        outcome = _run_timed(["bash", "-c", text], self.work, _environment(self.variables), how)
        outcome.notes = notes
        for pattern, check in EXPECTATIONS:
            if re.search(pattern, text) and outcome.problem is None:
                outcome.problem = check(outcome.stdout, outcome.stderr)
        return outcome

    def _make_target(self, text: str, target: str, rule: Rule) -> Outcome:
        makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
        has = re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE)
        problem = None if has else f"the Makefile has no target {target!r}"
        return Outcome(text, "skipped", problem=problem, notes=[rule.why])

    def _serve(self, text: str, rule: Rule) -> Outcome:
        import httpx

        start = time.perf_counter()
        server = Server(text, self.work, _environment(self.variables))
        problem = server.wait_ready()
        if problem is None:
            headers = {"Authorization": f"Bearer {API_KEY}"}
            try:
                health = httpx.get(f"{server.url}/health", timeout=60)
                models = httpx.get(f"{server.url}/v1/models", headers=headers, timeout=60)
            except httpx.HTTPError as exc:
                problem = f"the running server did not answer: {exc!r}"
            else:
                if health.status_code != 200 or models.status_code != 200:
                    problem = f"/health {health.status_code}, /v1/models {models.status_code}"
                elif not models.json()["data"]:
                    problem = "/v1/models lists no model"
        if problem is None and _is_api_server(text):
            self.api_server = server  # stays up for the curl commands and the OpenAI block
            outcome = Outcome(server.text, "substituted", 0, "", "".join(server.output))
        else:
            outcome = server.stop()
            outcome.problem = outcome.problem if problem is None else problem
        outcome.notes, outcome.seconds = [rule.why], time.perf_counter() - start
        return outcome


def _is_api_server(text: str) -> bool:
    return text.startswith("embedcraft serve") and " -c docs=" in text


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<tmp>/work with the stand-ins, and <tmp>/shared/data for the README's ../shared/data."""
    work = tmp_path_factory.mktemp("readme") / "work"
    work.mkdir()
    write_stand_ins(work)
    (work / "gallery").mkdir()
    return work


@pytest.fixture(scope="module")
def python(work: Path) -> Iterator[PythonBlocks]:
    """The Python blocks' folder (<tmp>/python, with its own stand-ins) and runner."""
    folder = work.parent / "python"
    folder.mkdir()
    write_stand_ins(folder)
    blocks = PythonBlocks(folder)
    yield blocks
    blocks.close()


@pytest.fixture(scope="module")
def shell(work: Path, python: PythonBlocks) -> Iterator[ShellSession]:
    """The shell commands' session; asking for it starts the Python blocks beside it."""
    session = ShellSession(work)
    yield session
    stopped = session.close()
    if stopped is not None:
        assert stopped.failure() is None, stopped.report()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL + pgvector, or a skip (a failure under CI=true) with the reason."""
    from pg_server import ServerUnavailable, postgres_server

    try:
        with postgres_server() as url:
            yield url
    except ServerUnavailable as exc:
        require_component("PostgreSQL", str(exc))


def test_every_fenced_block_is_a_known_kind() -> None:
    """A block in a new language would otherwise be silently left out of the runs below."""
    known = (*SHELL_LANGUAGES, *PYTHON_LANGUAGES, *IGNORED_LANGUAGES)
    unknown = [(b.line, b.language) for b in BLOCKS if b.language not in known]
    assert not unknown, f"README blocks in a language this test does not run: {unknown}"
    assert len(COMMANDS) > 40 and len(PYTHON_BLOCKS) > 8  # the README was read


def test_commands_are_read_as_the_shell_reads_them(tmp_path: Path) -> None:
    """Continuations joined, comments dropped (not a `#` inside quotes or a word), console
    output left out, line numbers those of the README."""
    page = tmp_path / "README.md"
    page.write_text(
        'text\n```bash\n# a comment line\nembedcraft a "x # y" b#c  # note\n'
        "embedcraft long \\\n  --flag 1 \\\n  --other   # why\n\n```\n"
        "```console\n$ embedcraft c\noutput line\n```\n```python\nprint(1)\n```\n",
        encoding="utf-8",
    )
    blocks = read_readme(page)
    assert [(b.language, b.line) for b in blocks] == [("bash", 3), ("console", 11), ("python", 15)]
    assert [(c.line, c.text) for c in shell_commands(blocks[0])] == [
        (4, 'embedcraft a "x # y" b#c'),
        (5, "embedcraft long --flag 1 --other"),
    ]
    assert [c.text for c in shell_commands(blocks[1])] == ["embedcraft c"]


@pytest.mark.parametrize("index", range(len(COMMANDS)), ids=[c.test_id for c in COMMANDS])
def test_shell_command(shell: ShellSession, index: int) -> None:
    outcome = shell.through(index)
    assert outcome.failure() is None, outcome.report()


@pytest.mark.parametrize(
    "block", PYTHON_BLOCKS, ids=[f"L{b.line}-python-{b.text.split()[0]}" for b in PYTHON_BLOCKS]
)
def test_python_block(
    block: Block, python: PythonBlocks, shell: ShellSession, request: pytest.FixtureRequest
) -> None:
    outcome = python.started(block)
    if outcome is None:  # a block that needs a fixture: run here
        source, how = block.text, "ran"
        for rule in PYTHON_RULES:
            if not re.search(rule.pattern, source):
                continue
            if rule.action == "postgres":
                url = request.getfixturevalue("postgres_url")
            else:
                url = shell.server().url
            source = re.sub(rule.pattern, (rule.replacement or "").format(url=url), source)
            how = "substituted"
        if "embedcraft.distributed" in source:
            import_component("ray", "Ray")
        outcome = python.run(block, source, how)
    assert outcome.failure() is None, outcome.report()


def _prelude(source: str) -> str:
    """PLACEHOLDERS' lines for the names `source` uses but never sets (nor imports)."""
    tree = ast.parse(source)
    used, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    missing = used - bound - set(dir(builtins))
    unknown = missing - set(PLACEHOLDERS)
    assert not unknown, f"names the block uses that neither it nor PLACEHOLDERS sets: {unknown}"
    return _PRELUDE + "".join(PLACEHOLDERS[name] + "\n" for name in PLACEHOLDERS if name in missing)


def test_pip_extras_named_in_the_readme_exist() -> None:
    """`pip install 'embedcraft[X]'` in the text: no command to run, but X must be an extra."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    named = re.findall(r"pip install\s+'?embedcraft\[([\w,-]+)\]", README.read_text("utf-8"))
    assert named
    for names in named:
        for extra in names.split(","):
            assert extra in extras, f"README installs embedcraft[{extra}]; pyproject lacks it"


def test_scripts_named_in_the_readme_exist() -> None:
    """`python bench/X.py` and `make X` in the text name files and targets that exist."""
    text = README.read_text("utf-8")
    scripts = set(re.findall(r"python (bench/[\w/]+\.py)", text))
    assert scripts and all((ROOT / s).is_file() for s in scripts), scripts
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in set(re.findall(r"`make (\w+)`", text)):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"no make target {target}"


def test_every_rule_and_stand_in_is_still_needed() -> None:
    """A rule that matches nothing, or a stand-in no command names, is left over from an
    older README: take it out (or fix the README)."""
    shell_text = "\n".join(c.text for c in COMMANDS)
    python_text = "\n".join(b.text for b in PYTHON_BLOCKS)
    for rule in SHELL_RULES:
        assert re.search(rule.pattern, shell_text, re.MULTILINE), rule
    for rule in PYTHON_RULES:
        assert re.search(rule.pattern, python_text), rule
    everything = shell_text + python_text + shell_text.replace("$D", "../shared/data")
    for name in STAND_INS:
        assert name.rstrip("/") in everything, f"stand-in {name} is named nowhere in the README"


def test_counts(
    shell: ShellSession, python: PythonBlocks, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs last: how many commands and blocks ran, were substituted or skipped, and why."""
    shell.through(len(COMMANDS) - 1)
    tally: dict[str, int] = {}
    for outcome in shell.outcomes.values():
        tally[outcome.how] = tally.get(outcome.how, 0) + 1
    lines = [
        f"README: {len(COMMANDS)} shell commands: "
        + ", ".join(f"{n} {how}" for how, n in sorted(tally.items())),
        f"README: {len(PYTHON_BLOCKS)} Python blocks: {len(python.outcomes)} run here "
        + f"({sum(o.how == 'substituted' for o in python.outcomes.values())} with substitutions)",
    ]
    for i, outcome in sorted(shell.outcomes.items()):
        if outcome.how != "ran":
            lines.append(f"  L{COMMANDS[i].line} {outcome.how}: {'; '.join(outcome.notes)}")
    timed = [(o.seconds, o.cpu, f"L{COMMANDS[i].line}") for i, o in shell.outcomes.items()]
    timed += [(o.seconds, o.cpu, f"L{line} (Python)") for line, o in python.outcomes.items()]
    lines.append(
        f"  time: {sum(t[0] for t in timed):.0f} s wall, {sum(t[1] for t in timed):.0f} s CPU; "
        + "slowest: "
        + ", ".join(f"{name} {wall:.1f}/{cpu:.1f} s" for wall, cpu, name in sorted(timed)[-8:])
    )
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert all(o.failure() is None for o in shell.outcomes.values())
