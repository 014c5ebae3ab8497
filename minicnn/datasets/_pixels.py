"""Decoding one image file into integer levels: bit depths, transparency, orientation, resizing.

The rules are documented, for users, in :mod:`minicnn.datasets.folder`; this module holds
the per-file work that :func:`~minicnn.datasets.folder.load_image_folder` and
:func:`~minicnn.datasets.folder.load_images` share. Pillow's modules are passed in, never
imported here, so that importing the package does not need Pillow.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # older Pillow opens 16-bit PNGs as "I"
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
# What Pillow raises for a file it cannot decode: not an image, truncated, corrupt, too large.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


class Unreadable(Exception):
    """One file that cannot be decoded; the message is the reason, shown after its path."""


def decode(path: Path, size: tuple[int, int] | None, grayscale: bool, pil) -> tuple[np.ndarray, int]:
    """One file as integer levels (H, W, C) and the level that means 1.0; Unreadable if it fails."""
    Image, ImageOps = pil
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)  # a decoded copy, turned upright
            if im.mode in SIXTEEN_BIT_MODES:
                return sixteen_bit(im, size, grayscale, Image), 65535
            if im.mode == "F":
                raise Unreadable(
                    "floating-point pixels have no fixed maximum to scale to [0, 1]; "
                    "save it with 8 or 16 bits per channel"
                )
            return eight_bit(im, size, grayscale, Image), 255
    except Image.UnidentifiedImageError:
        raise Unreadable(
            "not an image in any format Pillow reads (empty, cut short, or another kind of file)"
        ) from None
    except DECODE_ERRORS + (Image.DecompressionBombError,) as exc:
        raise Unreadable(f"{type(exc).__name__}: {exc}") from None


def eight_bit(im, size, grayscale: bool, Image) -> np.ndarray:
    if im.mode in ALPHA_MODES or "transparency" in im.info:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint32)
        colour, alpha = rgba[..., :3], rgba[..., 3:]
        # colour * a/255 + white * (1 - a/255), in levels, rounded to nearest (255 is odd: no ties)
        im = Image.fromarray(((colour * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8))
    elif im.mode not in ("L", "RGB"):
        im = im.convert("RGB")  # 1-bit, palette, CMYK, YCbCr
    target = "L" if grayscale else "RGB"
    if im.mode != target:
        im = im.convert(target)
    if size is not None and im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    pixels = np.asarray(im)
    return pixels[:, :, None] if grayscale else pixels


def sixteen_bit(im, size, grayscale: bool, Image) -> np.ndarray:
    levels = np.asarray(im)
    if levels.dtype != np.uint16 and levels.size and (levels.min() < 0 or levels.max() > 65535):
        raise Unreadable(
            "32-bit integer pixels beyond 0..65535 have no fixed maximum to scale to [0, 1]; "
            "save it with 8 or 16 bits per channel"
        )
    levels = levels.astype(np.uint16)
    key = im.info.get("transparency")
    if isinstance(key, int):  # a tRNS gray key: those pixels are transparent, so white
        levels = np.where(levels == key, np.uint16(65535), levels)
    if size is not None and levels.shape != size:
        levels = np.asarray(Image.fromarray(levels).resize((size[1], size[0]), Image.Resampling.BILINEAR))
    levels = levels[:, :, None]
    return levels if grayscale else np.broadcast_to(levels, levels.shape[:2] + (3,))
