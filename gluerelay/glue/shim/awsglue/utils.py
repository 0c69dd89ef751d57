"""``awsglue.utils.getResolvedOptions`` as Glue implements it: required ``--NAME value`` arguments."""

from __future__ import annotations

import argparse


class GlueArgumentError(Exception):
    """An argument the job asked for was not passed (Glue fails the run the same way)."""


def getResolvedOptions(args: list[str], options: list[str]) -> dict[str, str]:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for option in options:
        parser.add_argument(f"--{option}", dest=option, default=None)
    parsed, _unknown = parser.parse_known_args(args[1:])
    values = vars(parsed)
    missing = [option for option in options if values.get(option) is None]
    if missing:
        raise GlueArgumentError(
            "the following arguments are required: " + ", ".join(f"--{m}" for m in missing)
        )
    return {option: values[option] for option in options}
