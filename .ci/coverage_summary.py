"""Print the line and branch coverage of a combined coverage run (``coverage json`` output)."""

import json
import sys
from pathlib import Path

report = Path(sys.argv[1] if len(sys.argv) > 1 else ".coverage-summary.json")
totals = json.loads(report.read_text())["totals"]
lines = 100 * totals["covered_lines"] / max(totals["num_statements"], 1)
branches = 100 * totals["covered_branches"] / max(totals["num_branches"], 1)
print(f"coverage of src/fm_lab (this process and its Python subprocesses): "
      f"lines {lines:.1f}%, branches {branches:.1f}% "
      f"({totals['covered_branches']}/{totals['num_branches']} branches)")
