"""Datasets: the synthetic shapes of the demo, and your own images from a folder.

- :func:`make_shapes` draws edges and shapes from a seed; :func:`load_shapes` gives its fixed
  train and test splits, cached under ``data/`` and verified by checksum
  (modules :mod:`~minicnn.datasets.shapes` and :mod:`~minicnn.datasets.cache`).
- :func:`load_image_folder` reads the images, in any format Pillow decodes, laid out as
  ``root/<class>/<image>``, shuffled with a fixed seed by default; :func:`load_images` reads a
  list of files the same way, for prediction; :func:`list_images` finds the image files in a
  folder and :func:`image_extensions` says which extensions count
  (module :mod:`~minicnn.datasets.folder`; needs Pillow, the ``images`` extra).

All of them return float32 NCHW images in [0, 1] and int64 labels.
"""

from .cache import load_shapes
from .folder import image_extensions, list_images, load_image_folder, load_images
from .shapes import CLASSES, VERSION, make_shapes

__all__ = [
    "CLASSES",
    "VERSION",
    "image_extensions",
    "list_images",
    "load_image_folder",
    "load_images",
    "load_shapes",
    "make_shapes",
]
