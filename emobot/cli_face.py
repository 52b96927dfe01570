"""`emobot sense|train|eval|bench face`. Heavy imports stay inside the commands."""
from __future__ import annotations

import argparse
import sys


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    """Face-only options for one subcommand (shared ones: --json --data --out --model --manifest)."""


def _not_yet(command: str) -> int:
    print(f"emobot {command} face: not available yet in this version", file=sys.stderr)
    return 2


def sense(args) -> int:
    return _not_yet("sense")


def train(args) -> int:
    return _not_yet("train")


def eval(args) -> int:  # noqa: A001 - the subcommand's name
    return _not_yet("eval")


def bench(args) -> int:
    return _not_yet("bench")
