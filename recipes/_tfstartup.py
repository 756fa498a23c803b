"""Import TensorFlow without its C++ start-up chatter, keeping real warnings.

TensorFlow 2.21 writes INFO lines ("oneDNN custom operations are on", "Could not find
cuda drivers") straight to file descriptor 2 before absl logging is initialised, so
``TF_CPP_MIN_LOG_LEVEL`` does not hide them. This module captures fd 2 while
``tensorflow`` is imported and writes back every captured line that is not one of those
INFO lines (or the "failed call to cuInit" error that every CPU-only machine prints when
the devices are listed): warnings and other errors still reach the user. Set
``RECIPES_TF_VERBOSE=1`` to see everything.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

# INFO lines, absl's preamble, and the CPU-only machine's "failed call to cuInit" (the
# device list is built inside the capture, so the line appears there or not at all).
_INFO_LINE = re.compile(
    r"^(I\d{4} |WARNING: All log messages before absl::InitializeLog"
    r"|E\d{4} .*cuda_platform\.cc:\d+\] failed call to cuInit)"
)


def import_tensorflow_quietly() -> None:
    """Import tensorflow once, dropping only its start-up INFO lines from stderr."""
    if "tensorflow" in sys.modules or os.environ.get("RECIPES_TF_VERBOSE"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (some notebook front-ends)
        import tensorflow  # noqa: F401

        return
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not _INFO_LINE.match(line):
                    sys.stderr.write(line)
            sys.stderr.flush()
