"""Running the app with uvicorn: in the foreground (`serve`, what the CLI does) or in a background
thread on a free port (`BackgroundServer`, for notebooks and tests)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

from ..errors import InputError
from ._config import ServerConfig

__all__ = ["BackgroundServer", "serve"]

LOOPBACK = "127.0.0.1"


def _uvicorn_config(app: Any, host: str, port: int, log_level: str) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level == "debug",
        timeout_graceful_shutdown=10,
    )


def serve(
    config: ServerConfig, *, host: str = LOOPBACK, port: int = 8000, log_level: str = "info"
) -> None:
    """Serve `config` until interrupted (Ctrl-C or SIGTERM stop it gracefully)."""
    import uvicorn

    from ._app import create_app

    if not 0 <= port <= 65535:
        raise InputError(f"port must be between 0 and 65535, got {port}")
    uvicorn.Server(_uvicorn_config(create_app(config), host, port, log_level)).run()


class BackgroundServer:
    """A server on a free loopback port in a background thread: ``with BackgroundServer(c) as s:``
    then talk to ``s.url``; leaving the block stops it (requests in flight finish first)."""

    def __init__(self, config: ServerConfig, *, log_level: str = "warning") -> None:
        self.config = config
        self.log_level = log_level
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321 (the OpenAI client wants url + '/v1')."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 60.0) -> BackgroundServer:
        """Bind a free port, start serving, and return once the server answers (models loaded)."""
        import uvicorn

        from ._app import create_app

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, 0))
        self.port = sock.getsockname()[1]
        app = create_app(self.config)
        self._server = uvicorn.Server(_uvicorn_config(app, LOOPBACK, self.port, self.log_level))

        def run() -> None:
            try:
                self._server.run(sockets=[sock])
            except BaseException as exc:  # reported by start()
                self._failure = exc
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name=f"embedcraft-server-{self.port}")
        self._thread.daemon = True
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                reason = f": {self._failure}" if self._failure else ""
                raise RuntimeError(f"the server did not start{reason}")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the server to exit and wait for its thread (in-flight requests finish)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"the server on port {self.port} did not stop in {timeout} s")
            self._thread = None

    @property
    def running(self) -> bool:
        """True while the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
