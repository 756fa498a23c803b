"""ch11-recipes: Chapter 11 of Hands-On Machine Learning as importable Keras 3 pieces."""

from recipes._tfstartup import import_tensorflow_quietly

import_tensorflow_quietly()
