"""Keras Tuner's distributed engine, as the search uses it: chief, workers, barrier.

Keras Tuner runs a distributed search from three environment variables:
``KERASTUNER_TUNER_ID`` (``chief`` for the chief, a unique name per worker),
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``. Every process builds the same
tuner; the chief's tuner serves its oracle over gRPC (`serve_oracle`), the workers'
tuners get trials from it and run them. `distributed_env` sets the variables for a role,
`wait_at_barrier` lets workers start together, `quiet_condition_protos` removes a stray
debugging ``print`` of Keras Tuner 1.4.8 that floods a distributed run's output.

Reference: Keras Tuner, "Distributed hyperparameter tuning"
(keras.io/guides/keras_tuner/distributed_tuning/); keras_tuner/src/distribute/.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

__all__ = ["distributed_env", "quiet_condition_protos", "serve_oracle", "wait_at_barrier"]


@contextlib.contextmanager
def distributed_env(role: str | None, tuner_id: str, oracle: tuple[str, int] | None
                    ) -> Iterator[None]:
    """Set Keras Tuner's three environment variables for a role; restore them after.

    Args:
        role: `"chief"`, `"worker"` or `None` (a local search: the variables are unset).
        tuner_id: ``KERASTUNER_TUNER_ID`` (contains ``chief`` for the chief).
        oracle: the chief's ``(host, port)``.

    Yields:
        Nothing; the variables are set inside the ``with`` block.
    """
    names = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
    saved = {n: os.environ.get(n) for n in names}
    for n in names:
        os.environ.pop(n, None)
    if role:
        host, port = oracle
        os.environ.update({"KERASTUNER_TUNER_ID": tuner_id,
                           "KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": str(port)})
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def quiet_condition_protos() -> bool:
    """Remove the stray ``print`` in Keras Tuner 1.4.8's ``Parent.to_proto``.

    Every conditional hyperparameter sent over gRPC prints its first parent value
    ("momentum", "0.1", ...), flooding a distributed search's output. This replaces the
    method with the same code minus the print, and only when the installed version
    still has the print.

    Returns:
        Whether the method was replaced.

    Reference: keras_tuner/src/engine/conditions.py (Keras Tuner 1.4.8).
    """
    import inspect

    from keras_tuner.src import protos
    from keras_tuner.src.engine import conditions

    original = conditions.Parent.to_proto
    try:
        if "print(" not in inspect.getsource(original):
            return False
    except (OSError, TypeError):
        return False

    def to_proto(self):
        proto = protos.get_proto()
        first = self.values[0]
        kind = ("string_value" if isinstance(first, str) else "boolean_value"
                if isinstance(first, bool) else "int_value" if isinstance(first, int)
                else "float_value")
        values = [proto.Value(**{kind: v}) for v in self.values]
        return proto.Condition(parent=proto.Condition.Parent(name=self.name, values=values))

    conditions.Parent.to_proto = to_proto
    return True


def serve_oracle(tuner: Any, address: str, *, poll_s: float = 0.2,
                 max_workers: int = 8) -> None:
    """Serve the chief tuner's oracle over gRPC until the search is over.

    What Keras Tuner's chief does in `search` (save, then `OracleServicer` over gRPC),
    polling every `poll_s` seconds instead of every 20 s for the end: the search is over
    when a worker has been told to stop, no trial is running and every worker has left.

    Args:
        tuner: the chief's tuner (``KERASTUNER_TUNER_ID`` contains ``chief``).
        address: ``HOST:PORT`` to listen on.
        poll_s: seconds between checks.
        max_workers: gRPC server threads.

    Raises:
        RuntimeError: the address cannot be bound.

    Reference: keras_tuner/src/distribute/oracle_chief.py (Keras Tuner 1.4.8).
    """
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    oracle = tuner.oracle
    tuner.save()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    if server.add_insecure_port(address) == 0:
        raise RuntimeError(f"The chief could not listen on {address}: is the port in use?")
    server.start()
    print(f"[chief] oracle serving on {address}", flush=True)
    done = -1
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(poll_s)
            finished = len(oracle.end_order)
            if finished != done:
                done = finished
                best = oracle.get_best_trials(1)
                score = f"{best[0].score:.4f}" if best and best[0].score is not None else "none"
                print(f"[chief] {finished} trial(s) finished, "
                      f"{len(oracle.ongoing_trials)} running; best {oracle.objective.name} "
                      f"{score}", flush=True)
    finally:
        server.stop(grace=1.0)


def wait_at_barrier(directory: str | os.PathLike, count: int, name: str,
                    timeout_s: float = 600.0) -> None:
    """Mark `name` ready in `directory` and wait until `count` names are ready.

    The launcher has every worker wait here once it is ready to take trials, so that a
    worker that starts first does not take every trial of a small search.

    Args:
        directory: a folder shared by the workers.
        count: workers to wait for.
        name: this worker's name.
        timeout_s: seconds to wait at most.

    Raises:
        TimeoutError: fewer than `count` workers became ready in time.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.ready").write_text(str(os.getpid()))
    deadline = time.monotonic() + timeout_s
    while len(list(folder.glob("*.ready"))) < count:
        if time.monotonic() > deadline:
            ready = sorted(p.stem for p in folder.glob("*.ready"))
            raise TimeoutError(f"Only {len(ready)} of {count} workers ready after "
                               f"{timeout_s:.0f} s: {', '.join(ready)}.")
        time.sleep(0.1)
