"""``arbx up`` / ``arbx down``: a real deployment on this machine — a Dagster code server,
dagster-webserver, dagster-daemon (schedules, sensors, run queue) and, when available, the
ArbX API — sharing one PostgreSQL instance.

The code server keeps the code location loaded for the webserver and the daemon. Left to
load it themselves, each spawns its own server and the daemon replaces its own every minute
or so: the seconds that takes (imports, definitions) were spent again and again, and the
sensor ticks and run launches in flight waited for them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import typer
import yaml

from arbx_dagster.instance import CODE_LOCATION, LOCATION_NAME, prepare_dagster_home
from arbx_dagster.settings import Settings
from arbx_dagster.storage.warehouse import redact

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/arbx"


def _run_dir(settings: Settings) -> Path:
    path = settings.home / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def ensure_database(url: str) -> bool:
    """Create the database named in ``url`` if the server does not have it yet."""
    import adbc_driver_postgresql.dbapi as adbc

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with adbc.connect(admin, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = $1", (name,))
        if cursor.fetchone():
            return False
        cursor.execute(f'CREATE DATABASE "{name}"')
        return True


def _commands(
    webserver_port: int, api_port: int, code_port: int, workspace: Path
) -> dict[str, list[str]]:
    bin_dir = Path(sys.executable).parent
    served = ["-w", str(workspace)]
    commands = {
        "code_server": [
            str(bin_dir / "dagster"),
            "code-server",
            "start",
            *CODE_LOCATION,
            "-h",
            "127.0.0.1",
            "-p",
            str(code_port),
            "--location-name",
            LOCATION_NAME,
        ],
        "webserver": [
            str(bin_dir / "dagster-webserver"),
            *served,
            "-h",
            "127.0.0.1",
            "-p",
            str(webserver_port),
        ],
        "daemon": [str(bin_dir / "dagster-daemon"), "run", *served],
    }
    try:
        from arbx_dagster.cli import serve  # noqa: F401 - only when the API is installed

        commands["api"] = [
            sys.executable,
            "-m",
            "arbx_dagster.cli",
            "serve",
            "--port",
            str(api_port),
        ]
    except ImportError:
        pass
    return commands


def _workspace(run_dir: Path, code_port: int) -> Path:
    """A workspace file pointing the webserver and the daemon at the code server."""
    path = run_dir / "workspace.yaml"
    entry = {"host": "127.0.0.1", "port": code_port, "location_name": LOCATION_NAME}
    path.write_text(yaml.safe_dump({"load_from": [{"grpc_server": entry}]}), encoding="utf-8")
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int, deadline: float) -> bool:
    """Wait until something accepts connections on ``port`` (or ``deadline``)."""
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return True
        time.sleep(0.25)
    return False


def _alive(pid: int, *, group: bool = False) -> bool:
    """Whether the process lives; with ``group``, whether any process of its group is
    left (the code servers the leader spawned)."""
    try:
        (os.killpg if group else os.kill)(pid, 0)
    except OSError:
        return False
    return True


def _port(run_dir: Path, name: str, requested: int) -> int:
    """The port of the ``name`` process an earlier `arbx up` left running, else
    ``requested`` (0: any free port)."""
    pid_file, port_file = run_dir / f"{name}.pid", run_dir / f"{name}.port"
    if pid_file.exists() and port_file.exists() and _alive(int(pid_file.read_text())):
        running = int(port_file.read_text())
        if requested and running != requested:
            typer.echo(f"the {name} is already running on port {running}; using it")
        return running
    return requested or _free_port()


def up(
    port: int = typer.Option(3000, help="Dagster webserver port (the API is pointed at it)."),
    api_port: int = typer.Option(8080, help="ArbX API port (when the service is installed)."),
    code_port: int = typer.Option(
        0, help="Port of the Dagster code server the webserver and daemon share (0: any free)."
    ),
    wait: bool = typer.Option(True, help="Wait until the webserver answers."),
) -> None:
    """Start a Dagster code server, dagster-webserver, dagster-daemon (schedules and sensors
    on) and the API on PostgreSQL (ARBX_POSTGRES_URL, default
    postgresql://postgres@127.0.0.1:5432/arbx)."""
    os.environ.setdefault("ARBX_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    settings = Settings.from_env()
    assert settings.postgres_url is not None
    if ensure_database(settings.postgres_url):
        typer.echo(f"created database {redact(settings.postgres_url)}")
    home = prepare_dagster_home(settings)
    run_dir = _run_dir(settings)
    port = _port(run_dir, "webserver", port)
    code_port = _port(run_dir, "code_server", code_port)
    workspace = _workspace(run_dir, code_port)
    env = {
        **os.environ,
        "ARBX_HOME": str(settings.home),
        "DAGSTER_HOME": str(home),
        # The API drives the webserver started here, whatever port it was given.
        "ARBX_DAGSTER_URL": f"http://127.0.0.1:{port}",
    }
    env.setdefault("ARBX_AUTOMATION", "on")
    ports = {"webserver": port, "code_server": code_port}
    for name, command in _commands(port, api_port, code_port, workspace).items():
        pid_file = run_dir / f"{name}.pid"
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            typer.echo(f"{name} already running (pid {pid_file.read_text()})")
            continue
        log = (run_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=home,
        )
        pid_file.write_text(str(process.pid))
        if name in ports:
            (run_dir / f"{name}.port").write_text(str(ports[name]))
        typer.echo(f"started {name} (pid {process.pid}, log {run_dir / f'{name}.log'})")
        if name == "code_server" and not _listening(code_port, time.monotonic() + 60):
            typer.secho("the code server did not listen within 60 s; see its log", fg="red")
    if wait:
        deadline = time.monotonic() + 180
        url = f"http://127.0.0.1:{port}/server_info"
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    typer.echo(f"Dagster UI: http://127.0.0.1:{port}")
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        typer.secho("the webserver did not answer within 180 s; see its log", fg="red", err=True)
        raise typer.Exit(1)


def down() -> None:
    """Stop what `arbx up` started, with every process it spawned (SIGTERM to the whole
    process group, then SIGKILL to whatever is left after 20 s)."""
    run_dir = _run_dir(Settings.from_env())
    for pid_file in sorted(run_dir.glob("*.pid")):
        pid = int(pid_file.read_text())
        if _alive(pid, group=True):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + 20
            while _alive(pid, group=True) and time.monotonic() < deadline:
                time.sleep(0.2)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            typer.echo(f"stopped {pid_file.stem} (pid {pid})")
        pid_file.unlink()
    for port_file in run_dir.glob("*.port"):
        port_file.unlink()
