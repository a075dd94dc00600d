"""Matplotlib for kmlc's figures: pyplot on the Agg backend, PNG saving.

Every kmlc figure is written by `save_figure`: atomically, at `DPI` dots
per inch, exactly at the figure's size. No screen is needed.
"""

import os

from kmlc import io as kmlc_io

DPI = 110


def pyplot():
    """`matplotlib.pyplot` on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path):
    """Writes a figure as a PNG at `DPI` (atomically), closes it, returns path.

    A figure with a layout engine (`layout="constrained"`, as every kmlc
    plot has) is written at exactly its size; one without is cropped to
    what it draws (`bbox_inches="tight"`), so that no text is cut off.
    """
    plt = pyplot()
    path = os.fspath(path)
    crop = None if figure.get_layout_engine() is not None else "tight"
    try:
        with kmlc_io.atomic_path(path) as temp:
            figure.savefig(temp, dpi=DPI, format="png", bbox_inches=crop)
    finally:
        plt.close(figure)
    return path


def integer_locator():
    """A tick locator that puts ticks on integers only."""
    import matplotlib.ticker as ticker

    return ticker.MaxNLocator(integer=True)
