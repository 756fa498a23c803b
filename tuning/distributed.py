"""A distributed search on this machine: ``python -m tuning.distributed --workers 2``.

Keras Tuner's own chief/worker engine, started for you on the loopback interface: one
chief (``python -m tuning.search --distributed chief``, which serves the oracle over gRPC
on a free port of 127.0.0.1 and writes the results) and N workers (``--distributed
worker --tuner-id workerK``, which run the trials). Every other option goes to
`tuning.search` unchanged. The launcher prefixes each process's output with its name,
waits for them (``--timeout``), stops everything if a worker fails or time runs out, and
exits with the chief's status. ``trials.csv`` gets a ``worker`` column.

Examples:

    python -m tuning.distributed --workers 2 --max-trials 6 --max-epochs 3
    python -m tuning.distributed --workers 2 --data synthetic --quick --overwrite

Reference: Keras Tuner, "Distributed hyperparameter tuning"
(keras.io/guides/keras_tuner/distributed_tuning/).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence

from recipes.cli import parse_known_config
from tuning.config import LaunchConfig

__all__ = ["LAUNCHER_SETS", "free_port", "main"]

HOST = "127.0.0.1"
# The search options each process gets from the launcher, never from the user.
LAUNCHER_SETS = ("distributed", "oracle", "tuner_id", "start_barrier")
_RESERVED = tuple("--" + name.replace("_", "-") for name in LAUNCHER_SETS)
_EPILOG = ("Every other option is passed to `python -m tuning.search` (see its --help),\n"
           "except --distributed, --oracle, --tuner-id and --start-barrier, which the\n"
           "launcher sets.")


def free_port(host: str = HOST) -> int:
    """A TCP port free on `host` right now (the system picks it).

    Args:
        host: the interface. Defaults to the loopback `127.0.0.1`.

    Returns:
        The port number.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _pump(name: str, stream) -> None:
    for line in iter(stream.readline, ""):
        sys.stdout.write(f"{name:>8} | {line}")
        sys.stdout.flush()
    stream.close()


_PUMPS: list[threading.Thread] = []


def _start(name: str, args: list[str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "tuning.search", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pump = threading.Thread(target=_pump, args=(name, proc.stdout), daemon=True)
    pump.start()
    _PUMPS.append(pump)
    return proc


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(procs: Sequence[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _refuse_reserved(config: LaunchConfig, rest: list[str]) -> tuple[LaunchConfig, list[str]]:
    reserved = [a for a in rest if a.split("=")[0] in _RESERVED]
    if reserved:
        raise ValueError(f"{', '.join(reserved)}: the launcher sets these itself.")
    return config, rest


def main(argv: Sequence[str] | None = None) -> int:
    """Start a chief and `--workers` workers on 127.0.0.1 and wait for them.

    Args:
        argv: the arguments (default `sys.argv[1:]`).

    Returns:
        The chief's exit status; 1 when a worker failed, 124 on timeout, 2 on bad input.
    """
    from tuning.search import parse_args

    launch, rest = parse_known_config(LaunchConfig, argv, prog="python -m tuning.distributed",
                                    description=__doc__, epilog=_EPILOG,
                                    finish=_refuse_reserved)
    port = launch.port or free_port()
    oracle = ["--oracle", f"{HOST}:{port}"]
    parse_args([*rest, "--distributed", "chief", *oracle])  # bad input fails here, once
    barrier = tempfile.mkdtemp(prefix="tuning-barrier-")
    procs: list[subprocess.Popen] = []
    deadline = time.monotonic() + launch.timeout
    try:
        chief = _start("chief", [*rest, "--distributed", "chief", *oracle])
        procs.append(chief)
        start_by = time.monotonic() + launch.startup_timeout
        while not _listening(port):
            if chief.poll() is not None:
                if chief.returncode != 2:  # 2: bad input, which the chief's error line says
                    print(f"launcher: the chief exited ({chief.returncode}) before serving.",
                          flush=True)
                return chief.returncode or 1
            if time.monotonic() > min(start_by, deadline):
                print(f"launcher: the chief did not serve on {HOST}:{port} within "
                      f"{launch.startup_timeout:.0f} s.", flush=True)
                return 124
            time.sleep(0.2)
        workers = [
            _start(f"worker{i}", [*rest, "--distributed", "worker", *oracle, "--tuner-id",
                                  f"worker{i}", "--start-barrier", barrier, str(launch.workers)])
            for i in range(launch.workers)
        ]
        procs.extend(workers)
        print(f"launcher: chief on {HOST}:{port}, {launch.workers} worker(s)", flush=True)
        while any(p.poll() is None for p in procs):
            failed = [f"worker{i} ({w.returncode})" for i, w in enumerate(workers)
                      if w.returncode not in (None, 0)]
            if failed:
                print(f"launcher: {', '.join(failed)} failed; stopping the search.",
                      flush=True)
                return 1
            if chief.returncode not in (None, 0):
                print(f"launcher: the chief failed ({chief.returncode}); stopping.",
                      flush=True)
                return chief.returncode
            if time.monotonic() > deadline:
                print(f"launcher: timeout after {launch.timeout:.0f} s; stopping.", flush=True)
                return 124
            time.sleep(0.2)
        failed = [f"worker{i} ({w.returncode})" for i, w in enumerate(workers)
                  if w.returncode != 0]
        if failed:
            print(f"launcher: {', '.join(failed)} failed.", flush=True)
            return 1
        print(f"launcher: done (chief exit status {chief.returncode})", flush=True)
        return chief.returncode
    finally:
        _stop(procs)
        for pump in _PUMPS:
            pump.join(timeout=5)
        _PUMPS.clear()
        shutil.rmtree(barrier, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
