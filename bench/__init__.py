"""Benchmarks that measure and write figures (``python -m bench.time_to_accuracy``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["write_files"]


def write_files(out_dir: str | Path, files: Mapping[str, Any]) -> Path:
    """Write a benchmark's output files into `out_dir` (created when missing).

    Args:
        out_dir: the folder.
        files: file name -> content: text is written as it is, anything else as indented
            JSON with a final newline.

    Returns:
        The folder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content, indent=2) + "\n"
        (out / name).write_text(text)
    return out
