"""Datasets: examples (inputs, expected output, metadata) kept in the store as numbered
versions. Saving content a dataset already has as its latest version adds no version.

>>> ds = dataset("qa", pd.DataFrame({"question": ["2+2?"], "expected": ["4"]}))  # doctest: +SKIP
>>> ds.df  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fm_lab.evals.tables import now, tables
from fm_lab.store.codec import canonical, dumps, loads

if TYPE_CHECKING:
    import pandas as pd

    from fm_lab.store.base import RunStore

_RESERVED = ("example_id", "expected", "metadata", "inputs", "source_run_id")


class DatasetError(ValueError):
    """A dataset that does not exist, or rows that cannot become examples."""


@dataclass(frozen=True)
class Example:
    """One test case: what the target is given, what it should answer, and anything else."""

    inputs: dict[str, Any]
    expected: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    example_id: str = ""
    source_run_id: str | None = None

    def with_id(self) -> Example:
        """This example with its id: given, else a hash of its inputs (stable across
        versions, so experiments on two versions still pair their rows)."""
        if self.example_id:
            return self
        digest = hashlib.sha1(canonical(self.inputs).encode()).hexdigest()[:16]
        return Example(self.inputs, self.expected, self.metadata, digest, self.source_run_id)


@dataclass
class Dataset:
    """A version of a named dataset; :attr:`df` shows it as a DataFrame."""

    name: str
    version: int
    examples: list[Example]
    store: RunStore | None = None

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def df(self) -> pd.DataFrame:
        """One row per example: ``example_id``, the inputs as columns, ``expected``,
        ``metadata``."""
        import pandas as pd

        rows = [{"example_id": e.example_id, **e.inputs, "expected": e.expected,
                 "metadata": e.metadata, "source_run_id": e.source_run_id}
                for e in self.examples]
        return pd.DataFrame(rows)

    def versions(self) -> pd.DataFrame:
        """Every stored version of this dataset."""
        frame = datasets(store=self.store)
        return frame[frame["name"] == self.name].reset_index(drop=True)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, version={self.version}, examples={len(self)})"


def _as_dict(value: Any) -> dict[str, Any]:
    if value is None or (isinstance(value, float) and value != value):
        return {}
    if isinstance(value, dict):
        return value
    raise DatasetError(f"metadata must be a dict per row, not {type(value).__name__}")


def _text(value: Any) -> str | None:
    """A cell as text, None when empty (None or NaN)."""
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return None
    return str(value)


def examples_from_frame(frame: pd.DataFrame, *, inputs: Sequence[str] | None = None,
                        expected: str | None = "expected",
                        metadata: Sequence[str] | None = None) -> list[Example]:
    """Examples from a DataFrame: an ``inputs`` column of dicts, or the ``inputs`` columns
    (default: every column but ``expected``, ``metadata``, ``example_id`` and those named in
    ``metadata``); ``expected`` names the expected-output column (None: none)."""
    if expected is not None and expected not in frame.columns and expected != "expected":
        raise DatasetError(f"no column {expected!r} for expected outputs; columns: "
                           f"{', '.join(map(str, frame.columns))}")
    meta_columns = list(metadata or [])
    missing = [c for c in [*(inputs or []), *meta_columns] if c not in frame.columns]
    if missing:
        raise DatasetError(f"no column {', '.join(map(repr, missing))} in the rows; columns: "
                           f"{', '.join(map(str, frame.columns))}")
    if inputs is None:
        inputs = [c for c in frame.columns
                  if c not in (*_RESERVED, expected, *meta_columns)]
        if "inputs" in frame.columns and not inputs:
            inputs = None
    found = []
    for record in frame.to_dict("records"):
        given = (_as_dict(record.get("inputs")) if inputs is None
                 else {str(c): record[c] for c in inputs})
        meta = {**_as_dict(record.get("metadata")), **{c: record[c] for c in meta_columns}}
        found.append(Example(given, record.get(expected) if expected else None, meta,
                             _text(record.get("example_id")) or "",
                             _text(record.get("source_run_id"))).with_id())
    if not found:
        raise DatasetError("a dataset needs at least one example")
    return found


def _read(source: Any) -> pd.DataFrame:
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise DatasetError(f"{path} does not exist")
        if path.suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True, dtype=False)
        if path.suffix == ".csv":
            return pd.read_csv(path)
        raise DatasetError(f"{path}: read .csv or .jsonl files (or give a DataFrame)")
    if isinstance(source, Iterable):
        return pd.DataFrame(list(source))
    raise DatasetError(f"rows are a DataFrame, a .csv/.jsonl path or records, "
                       f"not {type(source).__name__}")


def examples_from_runs(run_ids: Iterable[str], store: RunStore) -> list[Example]:
    """Stored runs as examples: their inputs, and their outputs as what is expected (the
    answer production gave, to hold later versions to)."""
    found = []
    for run_id in run_ids:
        try:
            snapshot = store.load_run(run_id)
        except KeyError:
            raise DatasetError(f"no run {run_id!r} in the store") from None
        found.append(Example(dict(snapshot.inputs), snapshot.outputs,
                             {"workflow_id": snapshot.workflow.id, "status": snapshot.status},
                             "", run_id).with_id())
    if not found:
        raise DatasetError("no runs given")
    return found


def _hash(examples: list[Example]) -> str:
    text = canonical([[e.example_id, e.inputs, e.expected, e.metadata] for e in examples])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def save(name: str, examples: list[Example], store: RunStore | None = None,
         description: str | None = None) -> Dataset:
    """Store ``examples`` as the next version of ``name`` (the latest, when it is the same)."""
    from fm_lab.identity import current_user

    if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise DatasetError(f"dataset name {name!r}: letters, digits, '-', '_' and '.' only")
    ids = [e.example_id for e in examples]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"dataset {name!r} repeats example ids (give distinct ones, or "
                           "leave them out for ids from the inputs)")
    content = _hash(examples)
    table = tables(store)
    versions = table.select("eval_datasets", {"name": name})
    if len(versions):
        latest = versions.sort_values("version").iloc[-1]
        if latest["content_hash"] == content:
            return load(name, int(latest["version"]), store)
    version = int(versions["version"].max()) + 1 if len(versions) else 1
    with table.batch():
        table.insert("eval_datasets", [{
            "name": name, "version": version, "created_at": now(),
            "created_by": current_user(), "description": description,
            "row_count": len(examples), "content_hash": content}])
        table.insert("eval_examples", [{
            "dataset": name, "version": version, "position": i, "example_id": e.example_id,
            "inputs": dumps(e.inputs), "expected": dumps(e.expected),
            "metadata": dumps(e.metadata), "source_run_id": e.source_run_id}
            for i, e in enumerate(examples)])
    return Dataset(name, version, examples, store)


def load(name: str, version: int | None = None, store: RunStore | None = None) -> Dataset:
    """A stored dataset (default: its latest version)."""
    table = tables(store)
    versions = table.select("eval_datasets", {"name": name})
    if not len(versions):
        raise DatasetError(f"no dataset {name!r}; fm_lab.evals.datasets() lists them")
    chosen = int(versions["version"].max()) if version is None else int(version)
    if chosen not in set(versions["version"].astype(int)):
        raise DatasetError(f"dataset {name!r} has no version {chosen}; it has "
                           f"{sorted(versions['version'].astype(int))}")
    rows = table.select("eval_examples", {"dataset": name, "version": chosen})
    rows = rows.sort_values("position")
    examples = [Example(loads(inputs) or {}, loads(expected), loads(meta) or {}, str(example_id),
                        source or None)
                for inputs, expected, meta, example_id, source in zip(
                    rows["inputs"], rows["expected"], rows["metadata"], rows["example_id"],
                    rows["source_run_id"], strict=True)]
    return Dataset(name, chosen, examples, store)


def dataset(name: str, rows: Any = None, *, inputs: Sequence[str] | None = None,
            expected: str | None = "expected", metadata: Sequence[str] | None = None,
            runs: Any = None, description: str | None = None, version: int | None = None,
            store: RunStore | None = None) -> Dataset:
    """The dataset ``name``: loaded (its latest version, or ``version``) when no rows are
    given; else ``rows`` (a DataFrame, a .csv or .jsonl path, records) or ``runs`` (run ids, or
    a DataFrame with a ``run_id`` column, e.g. ``fm_lab.runs()``) stored as its next version.
    """
    if rows is None and runs is None:
        return load(name, version, store)
    if rows is not None and runs is not None:
        raise DatasetError("give rows or runs, not both")
    if runs is not None:
        from fm_lab.store.default import default_store

        ids = list(runs["run_id"]) if hasattr(runs, "columns") else list(runs)
        found = examples_from_runs(ids, store or default_store())
    else:
        found = examples_from_frame(_read(rows), inputs=inputs, expected=expected,
                                    metadata=metadata)
    return save(name, found, store, description)


def datasets(store: RunStore | None = None) -> pd.DataFrame:
    """Every dataset version: name, version, rows, who made it and when."""
    frame = tables(store).select("eval_datasets")
    return frame.sort_values(["name", "version"]).reset_index(drop=True)
