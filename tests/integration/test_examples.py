"""The example workflows run as the README says (HTTP against a local policy server)."""

from pathlib import Path

import pytest

import fm_lab
from fm_lab import demo_functions

STORES = ("duckdb", "postgres")  # each test taking `store` runs on both (root conftest)


@pytest.fixture(autouse=True)
def _policy_server_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The expense policy is served on loopback: a team store runs restricted, whose http
    nodes reach a loopback address only when it is allow-listed, as an operator would."""
    monkeypatch.setenv("FM_LAB_HTTP_ALLOW", "127.0.0.1")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.flow.yaml"))
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_valid(path):
    assert fm_lab.validate(path).nodes


def test_small_expense_is_booked_without_asking(store, policy_url):
    run = fm_lab.run(ROOT / "examples/expense_approval.flow.yaml",
                     {"employee": "ada", "amount": 20, "category": "meals",
                      "policy_url": policy_url}, store=store)
    assert run.status == "succeeded", run.error
    assert run.outputs["result"]["employee"] == "ada"
    assert run.node("manager").status == "skipped"


def test_large_expense_waits_for_the_manager_and_books_once(store, policy_url):
    before = len(demo_functions.BOOKINGS)
    run = fm_lab.run(ROOT / "examples/expense_approval.flow.yaml",
                     {"employee": "bo", "amount": 420, "category": "travel",
                      "policy_url": policy_url}, store=store)
    assert run.status == "suspended"
    (waiting,) = fm_lab.pending(run.run_id, store=store).to_dict("records")
    assert waiting["label"] == "manager"
    assert "420" in waiting["payload"]["message"]
    done = fm_lab.resume(run.run_id, {"approved": True, "by": "lee"}, label="manager",
                         store=store)
    assert done.status == "succeeded"
    assert done.outputs["result"]["amount"] == 420
    assert len(demo_functions.BOOKINGS) == before + 1


def test_rejected_expense_is_declined(store, policy_url):
    run = fm_lab.run(ROOT / "examples/expense_approval.flow.yaml",
                     {"employee": "cy", "amount": 900, "category": "travel",
                      "policy_url": policy_url}, store=store)
    done = fm_lab.resume(run.run_id, {"approved": False, "comment": "over budget"},
                         label="manager", store=store)
    assert done.outputs == {"result": "Declined: over budget"}
    assert done.node("book").status == "skipped"
