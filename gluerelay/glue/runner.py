"""Child-process entry of one local Glue job run.

``python -m gluerelay.glue.runner SCRIPT [--NAME value]...``:

Starts the engine before the script imports pyspark, puts the awsglue shim on the import path, runs the
unmodified script as ``__main__`` and writes the outcome as JSON to ``$GLUERELAY_JOB_RESULT``: the state
and, for a failure, the message Glue would show as the run's ErrorMessage (``Type: message``).
"""

from __future__ import annotations

import json
import logging
import os
import runpy
import sys
import traceback
from pathlib import Path

from gluerelay.glue import engine

RESULT_ENV = "GLUERELAY_JOB_RESULT"
SHIM_DIR = Path(__file__).with_name("shim")


def error_message(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def run_script(script: str, arguments: list[str]) -> dict[str, str]:
    """Run ``script`` with Glue-style ``arguments`` in this process; return the outcome."""
    try:
        engine.session()
        if str(SHIM_DIR) not in sys.path:
            sys.path.insert(0, str(SHIM_DIR))
        sys.argv = [script, *arguments]
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            return {"state": "FAILED", "error": f"SystemExit: script exited with status {exit_.code}"}
    except BaseException as error:  # noqa: BLE001 - any failure of the user's script fails the job run
        traceback.print_exc()
        return {"state": "FAILED", "error": error_message(error)}
    return {"state": "SUCCEEDED"}


def main() -> int:
    if len(sys.argv) < 2:
        sys.stderr.write("usage: python -m gluerelay.glue.runner SCRIPT [--NAME value]...\n")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    outcome = run_script(sys.argv[1], sys.argv[2:])
    result_path = os.environ.get(RESULT_ENV)
    if result_path:
        Path(result_path).write_text(json.dumps(outcome))
    return 0 if outcome["state"] == "SUCCEEDED" else 1


if __name__ == "__main__":
    engine.end_process(main())
