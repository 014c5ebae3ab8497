"""Datasets: the synthetic shapes of the demo, your own images from a folder, and the datasets
every course uses, read from their official files.

- :func:`make_shapes` draws edges and shapes from a seed (:func:`make_shapes_with_masks` also
  gives each pixel's class, named by :data:`SEGMENT_CLASSES`, for segmentation);
  :func:`load_shapes` gives its fixed train and test splits, cached under ``data/`` and
  verified by checksum
  (modules :mod:`~minicnn.datasets.shapes` and :mod:`~minicnn.datasets.cache`).
- :func:`make_motion` draws clips of a shape moving left, right, up or down
  (:data:`MOTION_CLASSES`), for 3-D convolution: no single frame tells the direction
  (module :mod:`~minicnn.datasets.motion`).
- :func:`load_image_folder` reads the images, in any format Pillow decodes, laid out as
  ``root/<class>/<image>``, shuffled with a fixed seed by default; :func:`load_images` reads a
  list of files the same way, for prediction; :func:`list_images` finds the image files in a
  folder and :func:`image_extensions` says which extensions count
  (module :mod:`~minicnn.datasets.folder`; needs Pillow, the ``images`` extra).
- :func:`load_mnist` reads MNIST or Fashion-MNIST from the official IDX files, and
  :func:`load_cifar10` CIFAR-10 from its official binary files (never the pickled version);
  with ``download=True`` they fetch the files, checked against their published checksums
  (modules :mod:`~minicnn.datasets.mnist` and :mod:`~minicnn.datasets.cifar`).

The shapes and image-folder loaders return float32 NCHW images in [0, 1], and the motion
clips float32 (N, C, T, H, W) in [0, 1]; the MNIST and CIFAR-10 loaders return the files'
uint8 NCHW intensities 0..255 (which ``fit``, ``evaluate`` and ``predict`` read as float32 in
[0, 1]) without copying them. All labels are int64.
"""

from .cache import load_shapes
from .cifar import CIFAR10_CLASSES, load_cifar10
from .folder import image_extensions, list_images, load_image_folder, load_images
from .mnist import DIGIT_CLASSES, FASHION_CLASSES, load_mnist
from .motion import MOTION_CLASSES, make_motion
from .shapes import CLASSES, SEGMENT_CLASSES, VERSION, make_shapes, make_shapes_with_masks

__all__ = [
    "CIFAR10_CLASSES",
    "CLASSES",
    "DIGIT_CLASSES",
    "FASHION_CLASSES",
    "MOTION_CLASSES",
    "SEGMENT_CLASSES",
    "VERSION",
    "image_extensions",
    "list_images",
    "load_cifar10",
    "load_image_folder",
    "load_images",
    "load_mnist",
    "load_shapes",
    "make_motion",
    "make_shapes",
    "make_shapes_with_masks",
]
