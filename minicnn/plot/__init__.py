"""Pictures of convolutions and of what a network learned, drawn with matplotlib.

Needs the ``plot`` extra (``pip install -e ".[plot]"``); importing :mod:`minicnn` never
imports matplotlib, and this package imports it only when a picture is drawn.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot, so it
works with no display and leaves the user's backend and open figures alone. Every one
takes ``path=`` (save the picture there too) and ``ax=`` (draw into the place of that
Axes in an existing figure). In a notebook the returned figure shows itself; in a script
use ``path=`` or ``fig.savefig(...)``.

- :func:`convolution_steps`, :func:`animate_convolution`: a convolution worked by hand.
- :func:`output_volume`: F filters over a C-channel image, F maps stacked into a volume.
- :func:`filters`, :func:`feature_maps`: what a conv network learned and what it sees.
- :func:`history`, :func:`confusion`: how training went.
- :func:`augmented`: what a :mod:`minicnn.augment` transform does to a few images.

:func:`explore` is the exception to all of the above: it writes an HTML page (no matplotlib)
that explains a model on one input, step by step, in a browser.
"""

from .augment import augmented
from .explore import explore
from .network import feature_maps, filters
from .steps import animate_convolution, convolution_steps
from .training import confusion, history
from .volume import output_volume

__all__ = [
    "animate_convolution",
    "augmented",
    "confusion",
    "convolution_steps",
    "explore",
    "feature_maps",
    "filters",
    "history",
    "output_volume",
]
