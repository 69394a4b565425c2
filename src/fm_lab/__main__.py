"""``python -m fm_lab`` is ``fm-lab``."""


from fm_lab.cli import entry

entry()
