"""The ``weightfill`` command (``python -m weightfill``): subcommands, for now ``bench``.

    weightfill bench [--quick] [--size N] [--threads N] [--json] [--plot FILE.png] ...
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence


def build_parser() -> argparse.ArgumentParser:
    from . import bench

    parser = argparse.ArgumentParser(
        prog="weightfill",
        description="Fast, bit-for-bit reproducible initialization of weight tensors.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "bench",
        help="weightfill's speed beside numpy, torch, JAX and mkl_random",
        description=(
            "Times weightfill beside numpy (PCG64, Philox), torch, JAX and mkl_random in one "
            "process: warm-up, interleaved runs, medians. By default prints the table (under a "
            "minute); --targets checks the speed targets, --memory the peak RSS of new-array "
            "calls."
        ),
        epilog="examples: weightfill bench --quick; weightfill bench --size large --json; "
               "weightfill bench --targets --threads 2",
    )
    bench.add_arguments(p)
    p.set_defaults(run=bench.run, fail=p.error)  # errors name the subcommand in their usage
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``weightfill`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.run(args, args.fail))


if __name__ == "__main__":
    sys.exit(main())
