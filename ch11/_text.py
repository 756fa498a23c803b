"""The sentences the experiments' reports share, written once."""

from __future__ import annotations

__all__ = ["inputs_text", "mnist_text", "quick_note"]


def mnist_text(quick: bool, detail: str = "") -> str:
    """The reports' words for the data: ``"[a slice of ]MNIST with 5,000 training images
    held out for validation"``.

    Args:
        quick: the config's ``quick`` (a slice).
        detail: words after "MNIST", e.g. ``" (pixels in [0, 1])"``. Defaults to `""`.

    Returns:
        The phrase, without final punctuation.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 10 (the 5,000-image validation split).
    """
    return (f"{'a slice of ' if quick else ''}MNIST{detail} with 5,000 training images held "
            "out for validation")


def inputs_text(input_norm: str) -> str:
    """The reports' words for an ``input_norm`` option's inputs.

    Args:
        input_norm: one of `INPUT_NORMS`.

    Returns:
        ``"standardized by a Normalization layer adapted on the training set"`` or
        ``"pixels scaled to [0, 1]"``.

    Reference: Géron, Hands-On ML (3rd ed.), ch. 11, "SELU".
    """
    return ("standardized by a Normalization layer adapted on the training set"
            if input_norm == "normalization" else "pixels scaled to [0, 1]")


def quick_note(what: str = "a small slice and one epoch") -> str:
    """The note a ``--quick`` run ends its report with.

    Args:
        what: what quick mode cut. Defaults to `"a small slice and one epoch"`.

    Returns:
        ``"Quick mode: <what>; the numbers only smoke-test."``

    Reference: /work/shared/DESIGN.md ("Every experiment has a --quick mode").
    """
    return f"Quick mode: {what}; the numbers only smoke-test."
