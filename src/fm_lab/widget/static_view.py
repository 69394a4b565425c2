"""The state of a tiny widget that shows the static picture of a canvas in a notebook
reopened without a kernel.

JupyterLab (and Notebook 7) restore widget models saved under the notebook's ``widgets``
metadata before they render outputs; a canvas output whose model is neither there nor in the
kernel shows "Error displaying widget: model not found". The live canvas writes this state
under its own model id into that metadata (and removes entries of canvases no longer in the
notebook), so the reopened output renders the picture instead: a few hundred bytes of
JavaScript, not the editor's bundle."""

from __future__ import annotations

from typing import Any

# ipywidgets marks views without a kernel "disconnected" with a broken-link icon; the
# picture says it is a picture, so the icon is hidden
_HIDE_ICON = ("<style>.jupyter-widgets-disconnected:has(> .fm-lab-static)::before"
              "{display:none}</style>")
STATIC_ESM = (
    "export default { render({ model, el }) {"
    f" const show = () => {{ el.innerHTML = '{_HIDE_ICON}' + (model.get('static_html') || ''); }};"
    " show(); model.on('change:static_html', show); } };"
)
MARKER = "fm_lab.static"  # `_anywidget_id` of these models: how the canvas finds its own


def static_model_state(widget: Any, html: str) -> dict[str, Any]:
    """The widget-state entry (``model_name``, ``model_module``, ``state``...) of the static
    picture of ``widget``, in the format of ipywidgets' saved notebook state."""
    return {
        "model_name": widget._model_name,
        "model_module": widget._model_module,
        "model_module_version": widget._model_module_version,
        "state": {
            "_model_name": widget._model_name,
            "_model_module": widget._model_module,
            "_model_module_version": widget._model_module_version,
            "_view_name": widget._view_name,
            "_view_module": widget._view_module,
            "_view_module_version": widget._view_module_version,
            "_anywidget_id": MARKER,
            "_esm": STATIC_ESM,
            "static_html": html,
        },
    }
