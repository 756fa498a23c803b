"""Tiny folders of photos that the fish tests make for themselves (never the real photos)."""

from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"blue": (20, 40, 230), "green": (30, 200, 40), "red": (220, 30, 30),
           "white": (230, 230, 230)}


def make_folder(root: Path, sizes: dict, size: int = 24, seed: int = 0) -> Path:
    """One subfolder per class of noisy solid-colour PNGs (every photo's bytes differ).

    Args:
        root: the folder to create.
        sizes: colour name (a key of `COLOURS`) -> number of photos.
        size: the photos' side.
        seed: the noise's seed (another seed: other photos, no duplicates across folders).

    Returns:
        `root`.
    """
    rng = np.random.default_rng(seed)
    for name, n in sizes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = np.clip(np.array(COLOURS[name]) + rng.normal(0, 15, (size, size, 3)), 0, 255)
            Image.fromarray(img.astype("uint8")).save(root / name / f"{i:03d}.png")
    return root
