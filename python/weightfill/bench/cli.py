"""The command line: flags, Config, run."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable, Optional, TextIO

import numpy as np

from .._args import BFLOAT16
from ._constants import CASES, DEFAULT_REPEATS, DEFAULT_SIZE, DTYPES, PEERS, QUICK_REPEATS, QUICK_SIZE, SCHEMA
from .config import Config, Progress, _available_memory, _table_memory_need, parse_cases, parse_peers, parse_shape, parse_size
from .formatting import (format_markdown, format_memory, format_models, format_table,
                         format_targets)
from .machine import CpuMonitor, _loadavg, machine_info
from .memory import run_memory
from .models import run_models
from .plotting import plot_speedups
from .table import run_table
from .targets import run_targets


# ----------------------------------------------------------------------------------------------
# Command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", metavar="N",
                   help="values per fill: a number (16777216, 2**24, 16M) or tiny, small, "
                        "medium, large (2**16, 2**20, 2**24, 2**26); default medium, "
                        "--quick small")
    p.add_argument("--shape", metavar="ROWSxCOLS",
                   help="2-D shape of kaiming_normal and xavier_uniform (default: about --size "
                        "values, e.g. 4096x4096)")
    p.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="dtype of every row but the bfloat16 one (default float32)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="threads for weightfill and torch (default: weightfill's current "
                        "setting); numpy draws on one thread, JAX uses its own pool")
    p.add_argument("--repeats", type=int, metavar="N",
                   help=f"timed calls per contender, after a warm-up (default "
                        f"{DEFAULT_REPEATS}, --quick {QUICK_REPEATS})")
    p.add_argument("--peers", default="all", metavar="LIST",
                   help="comma-separated: all (default), none, numpy, " + ", ".join(PEERS))
    p.add_argument("--cases", metavar="LIST",
                   help="comma-separated table rows (default all): " + ", ".join(CASES))
    p.add_argument("--quick", action="store_true",
                   help="small sizes and 3 repeats: seconds, for a smoke test")
    p.add_argument("--targets", action="store_true",
                   help="check the speed targets at their own shapes (about a minute or two)")
    p.add_argument("--memory", action="store_true",
                   help="peak RSS of each engine distribution's new-array call, in subprocesses")
    p.add_argument("--models", action="store_true",
                   help="whole models (GPT-2-medium; --quick: a tiny GPT-2): torch's "
                        "construction against meta + weightfill.torch.materialize, init_module "
                        "against reset_parameters, peak RSS; fresh subprocesses (minutes)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--markdown", action="store_true",
                   help="also print the table as markdown (README)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="save a bar chart of the speed-ups (needs matplotlib)")
    p.add_argument("--no-progress", action="store_true", help="no progress on stderr")


def config_from_args(args: argparse.Namespace, fail: Callable[[str], Any]) -> Config:
    """Checks the options; ``fail(message)`` reports a bad one (argparse's ``error``)."""
    import weightfill as wf

    try:
        if args.size is not None:
            size = parse_size(args.size)
        else:
            size = QUICK_SIZE if args.quick else DEFAULT_SIZE
        shape = parse_shape(args.shape) if args.shape is not None else None
        peers = parse_peers(args.peers)
        cases = parse_cases(args.cases) if args.cases is not None else CASES
    except ValueError as e:
        fail(str(e))
        raise
    repeats = args.repeats if args.repeats is not None else (
        QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    if repeats < 1:
        fail(f"--repeats must be >= 1, got {repeats}")
    threads = args.threads if args.threads is not None else wf.get_num_threads()
    if not 1 <= threads <= 1024:
        fail(f"--threads must be in [1, 1024], got {threads}")
    others = args.targets or args.memory or args.models
    if args.plot is not None:
        if others:
            fail("--plot draws the table's speed-ups: it cannot go with --targets, --memory "
                 "or --models")
        if not args.plot.lower().endswith(".png"):
            fail(f"--plot {args.plot}: give a .png file name")
        folder = os.path.dirname(os.path.abspath(args.plot))
        if not os.path.isdir(folder):
            fail(f"--plot {args.plot}: folder {folder} does not exist")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            fail("--plot needs matplotlib: pip install matplotlib (or weightfill[plot])")
    if args.markdown and args.json:
        fail("--markdown and --json are alternatives: choose one")
    cfg = Config(size=size, shape=shape, dtype=np.dtype(BFLOAT16 if args.dtype == "bfloat16"
                                                        else args.dtype),
                 threads=threads, repeats=repeats, peers=peers, cases=cases, quick=args.quick)
    if not others:
        need, have = _table_memory_need(cfg), _available_memory()
        if have is not None and need > 0.8 * have:
            fail(f"--size {size} needs about {need / 2**30:.1f} GiB of memory, "
                 f"{have / 2**30:.1f} GiB available: choose a smaller --size or --shape")
    return cfg



def run(args: argparse.Namespace, fail: Callable[[str], Any], out: Optional[TextIO] = None) -> int:
    """Runs ``weightfill bench`` with parsed options; returns the exit status."""
    out = out if out is not None else sys.stdout
    cfg = config_from_args(args, fail)
    progress = Progress(not args.no_progress)
    parts = [p for p, on in (("table", not (args.targets or args.memory or args.models)),
                             ("targets", args.targets), ("memory", args.memory),
                             ("models", args.models)) if on]
    load_start = _loadavg()
    monitor = CpuMonitor()
    t0 = time.perf_counter()
    result: dict[str, Any] = {"schema": SCHEMA}
    result["config"] = {
        "size": cfg.size, "shape2d": list(cfg.shape2d), "dtype": str(cfg.dtype),
        "threads": cfg.threads, "repeats": cfg.repeats, "peers": list(cfg.peers),
        "cases": list(cfg.cases), "quick": cfg.quick, "parts": parts,
    }
    if "table" in parts:
        result["table"] = run_table(cfg, progress)
    if "targets" in parts:
        result["targets"] = run_targets(cfg, progress)
    if "memory" in parts:
        result["memory"] = run_memory(cfg, progress)
    if "models" in parts:
        result["models"] = run_models(cfg, progress)
    result["elapsed_s"] = time.perf_counter() - t0
    result["machine"] = machine_info(cfg.threads, {k: sys.modules[k] for k in PEERS
                                                   if k in sys.modules})
    result["machine"]["loadavg_start"] = load_start
    result["machine"]["loadavg_end"] = _loadavg()
    result["machine"]["other_cpu"] = monitor.other_cores()
    if args.json:
        json.dump(result, out, indent=1)
        out.write("\n")
    else:
        texts = []
        if "table" in result:
            texts.append(format_table(result))
            if args.markdown:
                texts.append(format_markdown(result))
        if "targets" in result:
            texts.append(format_targets(result))
        if "memory" in result:
            texts.append(format_memory(result))
        if "models" in result:
            texts.append(format_models(result))
        out.write("\n\n".join(texts) + "\n")
    if args.plot is not None:
        plot_speedups(result, args.plot)
        if not args.json:
            out.write(f"speed-ups plotted to {args.plot}\n")
    out.flush()
    return 0
