"""What each engine did with each bad landed file, as `test_bad_files.py` observed it, and the table.

The tests record one observation per file and engine (the local engine under `make test`, PySpark under
`make test-spark`) in `.gluerelay/bad-inputs/<engine>.json`; `python -m tests.integration.bad_inputs`
writes the table of both into RELIABILITY.md between its markers. `make bad-inputs` does all three.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / ".gluerelay" / "bad-inputs"
RELIABILITY = ROOT / "RELIABILITY.md"
BEGIN, END = "<!-- bad-inputs:begin -->", "<!-- bad-inputs:end -->"
ENGINES = {"sqlframe": "local engine (DuckDB)", "pyspark": "PySpark 3.5 (Glue 5.0)"}


def save(engine: str, observed: dict[str, dict[str, Any]]) -> None:
    """Merge this session's observations into the engine's file (a file's newest observation wins)."""
    path = RESULTS / f"{engine}.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    for name, facts in observed.items():
        previous[name] = {**previous.get(name, {}), **facts}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")


def cell(facts: dict[str, Any] | None) -> str:
    if not facts:
        return "not run"
    alone = facts.get("alone", "not run")
    batched = facts.get("batched")
    return f"{alone}; with a good file: {batched}" if batched else alone


def markdown(observed: dict[str, dict[str, dict[str, Any]]]) -> str:
    names = sorted({name for by_file in observed.values() for name in by_file})
    lines = [
        "| landed file | "
        + " | ".join(ENGINES.values())
        + " | reason | what the user reads | where its data went |",
        "|---|" + "---|" * len(ENGINES) + "---|---|---|",
    ]
    for name in names:
        facts = [observed.get(engine, {}).get(name) for engine in ENGINES]
        known = next(f for f in facts if f)
        lines.append(
            f"| `{name}` | "
            + " | ".join(cell(f) for f in facts)
            + f" | {known.get('reason') or '—'} | {known.get('message') or '—'} | {known.get('went', '')} |"
        )
    return "\n".join(lines)


def main() -> int:
    observed = {
        engine: json.loads((RESULTS / f"{engine}.json").read_text())
        for engine in ENGINES
        if (RESULTS / f"{engine}.json").is_file()
    }
    if not observed:
        print(
            f"no observations under {RESULTS}: run the bad-file tests first (make bad-inputs)",
            file=sys.stderr,
        )
        return 1
    text = RELIABILITY.read_text()
    if BEGIN not in text or END not in text:
        print(f"{RELIABILITY} has no {BEGIN} … {END} markers; table not written", file=sys.stderr)
        return 1
    head, _, rest = text.partition(BEGIN)
    RELIABILITY.write_text(f"{head}{BEGIN}\n{markdown(observed)}\n{END}{rest.partition(END)[2]}")
    print(markdown(observed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
