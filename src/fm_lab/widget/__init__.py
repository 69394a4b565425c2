"""The graph editor widget: ``GraphWidget(workflow)`` and ``show(workflow)``."""

from fm_lab.widget.graph_widget import BundleMissingError, GraphWidget, canvas, show

__all__ = ["BundleMissingError", "GraphWidget", "canvas", "show"]
