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
        "minute); --targets checks the speed targets, --memory the peak RSS of new-array calls, "
        "--models whole models (GPT-2-medium: construction, init_module, peak RSS).",
        "examples: weightfill bench --quick; weightfill bench --size large --json; "
        "weightfill bench --targets --threads 2; weightfill bench --models",
    ),
    (
        "explain",
        "weightfill.explain",
        "what each scheme does to activations and gradients, layer by layer",
        "Initializes a stack of dense or conv2d layers with each scheme, passes a "
        "standard-normal batch forward and a standard-normal gradient back, and reports per "
        "layer the std of the outputs and gradients beside the variance formula's prediction, "
        "dead units, distinct rows, and a verdict per scheme (NumPy only; seconds).",
        "examples: weightfill explain; weightfill explain --activation tanh --depth 20 "
        "--schemes xavier_uniform,kaiming_normal,normal:0.01 --plot tanh.png; "
        "weightfill explain --layer conv2d:3x3 --width 64 --json report.json",
    ),
    (
        "init",
        "weightfill.checkpoint",
        "write a safetensors checkpoint from a manifest, in bounded memory",
        "Generates every tensor of MANIFEST.json straight into a safetensors file (header "
        "first, then each tensor region by region on weightfill's threads; peak memory about "
        "100 MiB whatever the model's size), sharded above --max-shard-size in Hugging Face's "
        "layout (model-00001-of-0000N.safetensors + model.safetensors.index.json). The manifest "
        "is stored in the file's metadata under 'weightfill.manifest'. Written under a "
        "temporary name and renamed at the end: an error or Ctrl-C leaves no file.",
        "examples: weightfill init llama.json -o ckpt/; weightfill init m.json -o "
        "m.safetensors --max-shard-size 2GB --threads 8 --quiet",
    ),
    (
        "verify",
        "weightfill._verify_cli",
        "check that a safetensors checkpoint is exactly its manifest's initialization",
        "Regenerates every tensor (or, with --sample N, N random 1 MiB regions chosen from "
        "--seed) and compares bit for bit with the file or index; the manifest defaults to "
        "the one in the file's metadata. Prints each tensor's status; exits 1 naming the first "
        "mismatching tensor and element, 2 on bad input.",
        "examples: weightfill verify ckpt/model.safetensors; weightfill verify "
        "ckpt/model.safetensors.index.json llama.json --sample 100",
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
