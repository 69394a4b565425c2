"""The graph editor widget: ``GraphWidget(workflow)`` and ``show(workflow)``; a fork beside
its parent: ``compare(fork)``."""

from fm_lab.widget.compare import ForkView, compare
from fm_lab.widget.graph_widget import BundleMissingError, GraphWidget, canvas, show

__all__ = ["BundleMissingError", "ForkView", "GraphWidget", "canvas", "compare", "show"]
