"""Names on the Temporal side: a run's workflow id, and the address a run is stored with
(``temporal://HOST:PORT/NAMESPACE?task_queue=QUEUE``, the run's ``owner_host``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, urlsplit

ADDRESS_ENV: Final = "FM_LAB_TEMPORAL"  # host:port of the Temporal frontend
QUEUE_ENV: Final = "FM_LAB_TEMPORAL_QUEUE"
NAMESPACE_ENV: Final = "FM_LAB_TEMPORAL_NAMESPACE"
DEFAULT_ADDRESS: Final = "127.0.0.1:7233"
DEFAULT_QUEUE: Final = "fm_lab"
DEFAULT_NAMESPACE: Final = "default"
PREFIX: Final = "fm_lab-"


def workflow_id(run_id: str) -> str:
    """The Temporal workflow id of fm_lab run ``run_id``."""
    return PREFIX + run_id


def run_id_of(workflow_id: str) -> str:
    """The fm_lab run id of Temporal workflow ``workflow_id``."""
    if not workflow_id.startswith(PREFIX):
        raise ValueError(f"{workflow_id!r} is not the workflow id of an fm_lab run")
    return workflow_id[len(PREFIX):]


@dataclass(frozen=True)
class Target:
    """Where runs go: a Temporal frontend ``address``, a ``namespace`` and a ``task_queue``."""

    address: str = DEFAULT_ADDRESS
    namespace: str = DEFAULT_NAMESPACE
    task_queue: str = DEFAULT_QUEUE

    @classmethod
    def parse(cls, text: str) -> Target:
        """``"temporal"`` (the environment's target) or
        ``"temporal://HOST:PORT[/NAMESPACE][?task_queue=Q]"``."""
        if text == "temporal":
            return cls.from_env()
        parts = urlsplit(text)
        if parts.scheme != "temporal" or not parts.netloc:
            raise ValueError(f"not a Temporal target: {text!r}; use 'temporal' or "
                             "'temporal://HOST:PORT/NAMESPACE?task_queue=QUEUE'")
        queue = parse_qs(parts.query).get("task_queue", [os.environ.get(QUEUE_ENV)
                                                         or DEFAULT_QUEUE])[0]
        return cls(parts.netloc, parts.path.strip("/") or DEFAULT_NAMESPACE, queue)

    @classmethod
    def from_env(cls) -> Target:
        """``$FM_LAB_TEMPORAL``, ``$FM_LAB_TEMPORAL_NAMESPACE`` and ``$FM_LAB_TEMPORAL_QUEUE``
        (defaults ``127.0.0.1:7233``, ``default``, ``fm_lab``)."""
        return cls(os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS,
                   os.environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE,
                   os.environ.get(QUEUE_ENV) or DEFAULT_QUEUE)

    @property
    def url(self) -> str:
        """The target as stored with a run (its ``owner_host``)."""
        return f"temporal://{self.address}/{self.namespace}?task_queue={self.task_queue}"


__all__ = ["Target", "run_id_of", "workflow_id"]
