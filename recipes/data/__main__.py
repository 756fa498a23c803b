"""``python -m recipes.data mnist`` | ``python -m recipes.data fish DIR``.

Arguments are parsed before TensorFlow is imported, so ``--help`` is instant. A missing
folder or an unavailable MNIST ends with one message and exit code 2, not a traceback
(``RECIPES_DEBUG=1`` shows it). The MNIST message lists every source tried and the fix.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from recipes.cli import print_error


def main(argv: Sequence[str] | None = None) -> int:
    """Run the data command line.

    Args:
        argv: the arguments (``None``: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 done, 2 bad input or no MNIST source.
    """
    parser = argparse.ArgumentParser(
        prog="python -m recipes.data",
        description="Prepare the full MNIST offline, or summarize a folder of fish photos.",
    )
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("mnist", help="load MNIST, building the offline cache if needed")
    fish = sub.add_parser("fish", help="summarize a folder of fish photos")
    fish.add_argument("directory", help="one subfolder per class, Kaggle's layout, or "
                                        "train/ val/ test/")
    args = parser.parse_args(argv)
    if args.what == "mnist":
        import numpy as np

        from recipes.data.mnist import MnistUnavailableError, load_mnist

        try:
            (x_train, y_train), (x_test, _) = load_mnist()
        except MnistUnavailableError as e:
            print_error(e)
            return 2
        print(f"MNIST ready: train {x_train.shape} {x_train.dtype}, test {x_test.shape}; "
              f"train counts {np.bincount(y_train).tolist()} (shapes, dtype, per-digit "
              "counts and non-blank images checked)")
        return 0
    from recipes._startup import import_tensorflow_quietly

    import_tensorflow_quietly()
    from recipes.data.fish import load_fish

    try:
        data = load_fish(args.directory)
    except (FileNotFoundError, ValueError) as e:
        print_error(e)
        return 2
    print(data.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
