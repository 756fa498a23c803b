"""What machine a run is on, and which mixed-precision policy suits it.

`machine_info()` is written into every benchmark's results so a figure always says
which CPU produced it; `choose_precision("auto")` picks `mixed_bfloat16` only where
the hardware computes bf16 natively (on a CPU without it, bf16 is emulated and slower);
`clear_session` clears Keras's session between models without losing that policy.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from recipes.checks import check_choice
from recipes.names import PRECISIONS

__all__ = ["BF16_CPU_FLAGS", "PRECISIONS", "choose_precision", "clear_session", "cpu_flags",
           "machine_info", "model_policy"]

# x86 flags that mean native bf16 arithmetic (oneDNN uses them for bf16 matmuls/convs).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpuinfo(path: str | os.PathLike = "/proc/cpuinfo") -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """Return the CPU feature flags from ``/proc/cpuinfo`` text (empty off Linux).

    Args:
        cpuinfo: the text of ``/proc/cpuinfo``. Defaults to reading the file.

    Returns:
        The set of flags of the first processor listed.
    """
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def machine_info(cpuinfo: str | None = None) -> dict[str, object]:
    """Describe the machine: CPU model, cores, bf16 support, Python and library versions.

    Args:
        cpuinfo: the text of ``/proc/cpuinfo``. Defaults to reading the file.

    Returns:
        A JSON-ready dict.
    """
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    model = next(
        (line.partition(":")[2].strip() for line in text.splitlines()
         if line.startswith("model name")),
        platform.processor() or platform.machine(),
    )
    flags = cpu_flags(text)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": model,
        "cores": cores,
        "bf16_flags": sorted(flags & set(BF16_CPU_FLAGS)),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def choose_precision(requested: str = "auto", flags: set[str] | None = None) -> tuple[str, str]:
    """Pick the Keras dtype policy for a run.

    Args:
        requested: `"auto"`, `"float32"` or `"mixed_bfloat16"`. `"auto"` gives
            `mixed_bfloat16` when the CPU has native bf16 (`avx512_bf16` or
            `amx_bf16`), else `float32`.
        flags: CPU flags. Defaults to `cpu_flags()`.

    Returns:
        `(policy, reason)`, the reason a sentence for the report.

    Raises:
        ValueError: an unknown `requested` value.
    """
    check_choice("precision", requested, PRECISIONS)
    if requested != "auto":
        return requested, f"{requested} as requested"
    found = sorted((cpu_flags() if flags is None else flags) & set(BF16_CPU_FLAGS))
    if found:
        return "mixed_bfloat16", f"auto: the CPU computes bf16 natively ({', '.join(found)})"
    return "float32", "auto: no native bf16 on this CPU (bf16 would be emulated and slower)"


def clear_session(policy: str | None = None) -> str:
    """Clear Keras's session between models, keeping (or setting) the dtype policy.

    ``keras.backend.clear_session()`` also resets the global dtype policy to float32
    (Keras 3 keeps the policy in the state it clears), so a loop that sets
    ``mixed_bfloat16`` once and clears the session before each model silently builds
    every model in float32. This clears the session without Keras's ``gc.collect()``
    (``free_memory=False``, Keras's advice for loops: a full collection costs 0.2-1 s in
    a process that has imported TensorFlow) and then sets the policy again.

    Example:
        ```python
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        for width in (64, 128):
            clear_session()  # the next model is still built in mixed_bfloat16
            model = build_cnn(CNNSpec(dense_units=(width,)), (28, 28, 1), 10)
        ```

    Args:
        policy: the policy to build the next models with: a `PRECISIONS` name (``"auto"``
            as `choose_precision` decides) or any Keras policy name. Defaults to `None`
            (the policy in force before the call).

    Returns:
        The name of the policy in force after the call.
    """
    import keras  # here, so that importing this module stays free of TensorFlow

    if policy is None:
        policy = keras.config.dtype_policy().name
    elif policy in PRECISIONS:
        policy = choose_precision(policy)[0]
    keras.backend.clear_session(free_memory=False)
    keras.config.set_dtype_policy(policy)
    return keras.config.dtype_policy().name


def model_policy(model: Any) -> str:
    """The dtype policy a model was built in: its first layer with weights'.

    A `mixed_bfloat16` model keeps float32 where Keras advises it (a softmax output layer
    built with ``dtype="float32"``), so the first layer with weights tells the policy the
    model was built under, whatever its output layer says.

    Args:
        model: a built Keras model.

    Returns:
        The policy name, e.g. ``"mixed_bfloat16"``; ``"float32"`` for a model without weights.
    """
    return next((layer.dtype_policy.name for layer in model.layers if layer.weights), "float32")
