"""examples/team/jupyterhub_config.py is valid configuration: executed as JupyterHub reads it
(``get_config()`` giving a traitlets ``Config``), it points every user's server at the store
in ``FM_LAB_STORE``, restricted, with each user's roles."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

CONFIG = Path(__file__).resolve().parents[2] / "examples" / "team" / "jupyterhub_config.py"


def test_the_hub_config_points_every_server_at_one_store(monkeypatch: pytest.MonkeyPatch) -> None:
    from traitlets.config import Config

    monkeypatch.setenv("FM_LAB_STORE", "postgresql://fm_lab@db.test/fm_lab")
    config = Config()
    code = compile(CONFIG.read_text(encoding="utf-8"), str(CONFIG), "exec")
    exec(code, {"get_config": lambda: config, "__file__": str(CONFIG)})
    env = config.Spawner.environment
    assert env["FM_LAB_STORE"] == "postgresql://fm_lab@db.test/fm_lab"
    assert env["FM_LAB_POLICY"] == "restricted" and "FM_LAB_USER" not in env
    bob = SimpleNamespace(user=SimpleNamespace(name="bob"))
    eve = SimpleNamespace(user=SimpleNamespace(name="eve"))
    assert env["FM_LAB_ROLES"](bob) == "finance" and env["FM_LAB_ROLES"](eve) == ""
    (service,) = config.JupyterHub.services
    assert service["command"][:2] == ["fm-lab", "recover"]
    assert service["environment"]["FM_LAB_STORE"] == env["FM_LAB_STORE"]
