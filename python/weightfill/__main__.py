"""The ``weightfill`` command (``python -m weightfill``).

Each subcommand lives in its own module, which provides ``add_arguments(parser)`` and
``run(args, fail) -> int``; this file only lists them. A subcommand's module is imported when
the parser is built, and its heavy dependencies (torch, matplotlib, ...) only when it runs.

    weightfill bench [--quick] [--size N] [--threads N] [--json] [--plot FILE.png] ...
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

# (name, module, one-line help, description, epilog)
_COMMANDS = [
    (
        "bench",
        "weightfill.bench",
        "weightfill's speed beside numpy, torch, JAX and mkl_random",
        "Times weightfill beside numpy (PCG64, Philox), torch, JAX and mkl_random in one "
        "process: warm-up, interleaved runs, medians. By default prints the table (under a "
        "minute); --targets checks the speed targets, --memory the peak RSS of new-array calls.",
        "examples: weightfill bench --quick; weightfill bench --size large --json; "
        "weightfill bench --targets --threads 2",
    ),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weightfill",
        description="Fast, bit-for-bit reproducible initialization of weight tensors.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module, help_text, description, epilog in _COMMANDS:
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=description, epilog=epilog)
        mod.add_arguments(p)
        p.set_defaults(run=mod.run, fail=p.error)  # errors name the subcommand in their usage
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``weightfill`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.run(args, args.fail))


if __name__ == "__main__":
    sys.exit(main())
