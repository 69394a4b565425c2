"""``Workflow.validate()`` with no registry knows the built-in node types even when only the
spec package was imported (a fresh interpreter: nothing else installed the registry)."""

import subprocess
import sys

SCRIPT = """
from fm_lab.spec import Workflow, WorkflowValidationError
ok = Workflow.from_dict({"id": "one", "nodes": {"a": {"type": "template",
                                                      "config": {"template": "hi"}}}})
print(list(ok.validate().nodes))
try:
    Workflow.from_dict({"id": "two", "nodes": {"a": {"type": "nonsense"}}}).validate()
except WorkflowValidationError as exc:
    print("unknown node type 'nonsense'" in str(exc))
"""


def test_spec_alone_validates_against_the_built_in_types():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split("\n")[:2] == ["['a']", "True"], done.stderr
