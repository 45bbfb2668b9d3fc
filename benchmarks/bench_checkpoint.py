"""``weightfill.save`` / ``weightfill.verify`` against plain writes and torch + safetensors.

    python benchmarks/bench_checkpoint.py [--gib 4] [--rounds 1] [--dir DIR] [--threads N]

A Llama-like stack of ``(4096, 4096)`` float32 weights (``kaiming_uniform``, a = sqrt(5), as
``nn.Linear`` does) totalling ``--gib`` GiB, written to ``--dir`` (default: the current
directory's filesystem) by, in turn, round after round (interleaved, so drift hits all alike):

- ``dd``: ``dd if=/dev/zero of=F bs=1M count=N conv=fsync``, the same bytes' write rate;
- ``weightfill.save``: header, then every tensor generated region by region and written with
  ``pwrite``; fsync'ed and renamed;
- ``torch + save_file``: ``torch.empty`` + ``nn.init.kaiming_uniform_`` for each tensor (the
  whole model in memory), then ``safetensors.torch.save_file``, then an fsync of the file
  (save_file does not fsync; without it the time would end in the page cache);
- ``weightfill.verify`` of weightfill's file (regenerate and compare every byte; the file was
  just written, so it is read from the page cache).

Every writer's time includes its fsync, so each one ends on the disk. Each file is deleted
before the next contender runs. Prints each contender's median time and GB/s and the ratios of
the issue's targets: weightfill / dd >= 0.5, weightfill vs torch >= 3x, verify / save >= 0.5.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import weightfill as wf
from weightfill import checkpoint as ck

SHAPE = (4096, 4096)


def manifest(gib: float) -> wf.Manifest:
    per = math.prod(SHAPE) * 4
    n = max(1, round(gib * 2 ** 30 / per))
    spec = {f"layers.{i}.weight": (SHAPE, "kaiming_uniform", {"a": 5 ** 0.5}) for i in range(n)}
    return wf.Manifest.from_params(spec, seed=0)


def run_dd(path: str, nbytes: int) -> float:
    count = -(-nbytes // 2 ** 20)
    t = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={count}",
                    "conv=fsync", "status=none"], check=True)
    return time.perf_counter() - t


def run_save(path: str, m: wf.Manifest) -> float:
    t = time.perf_counter()
    ck.save(m, path, progress=False, overwrite=True)
    return time.perf_counter() - t


def run_verify(path: str) -> float:
    t = time.perf_counter()
    report = ck.verify(path)
    dt = time.perf_counter() - t
    if not report.ok:
        raise SystemExit(f"verify failed: {report.first_mismatch}")
    return dt


def run_torch(path: str, m: wf.Manifest) -> float:
    import torch
    from safetensors.torch import save_file

    t = time.perf_counter()
    state = {}
    for e in m.entries:
        w = torch.empty(e.shape)
        torch.nn.init.kaiming_uniform_(w, a=5 ** 0.5)
        state[e.name] = w
    save_file(state, path)
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    dt = time.perf_counter() - t
    del state
    return dt


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gib", type=float, default=4.0, help="checkpoint size in GiB (default 4)")
    p.add_argument("--rounds", type=int, default=1, help="rounds (default 1; medians)")
    p.add_argument("--dir", default=None, help="directory to write in (default: cwd)")
    p.add_argument("--threads", type=int, default=None, help="weightfill and torch threads")
    p.add_argument("--no-torch", action="store_true", help="skip torch + save_file")
    args = p.parse_args(argv)
    if args.threads:
        wf.set_num_threads(args.threads)
        import torch

        torch.set_num_threads(args.threads)
    m = manifest(args.gib)
    nbytes = m.nbytes
    workdir = tempfile.mkdtemp(prefix="bench-ckpt-", dir=args.dir or os.getcwd())
    print(f"{len(m)} tensors {SHAPE} float32, {nbytes / 2 ** 30:.2f} GiB, in {workdir}; "
          f"weightfill threads {wf.get_num_threads()}, {os.cpu_count()} CPUs; load "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    times: dict[str, list[float]] = {"dd": [], "save": [], "verify": [], "torch": []}
    try:
        for r in range(args.rounds):
            f = os.path.join(workdir, "dd.bin")
            times["dd"].append(run_dd(f, nbytes))
            os.unlink(f)
            f = os.path.join(workdir, "wf.safetensors")
            times["save"].append(run_save(f, m))
            times["verify"].append(run_verify(f))
            os.unlink(f)
            if not args.no_torch:
                f = os.path.join(workdir, "torch.safetensors")
                times["torch"].append(run_torch(f, m))
                os.unlink(f)
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()
                                                 if v), flush=True)
    finally:
        for name in os.listdir(workdir):
            os.unlink(os.path.join(workdir, name))
        os.rmdir(workdir)
    med = {k: statistics.median(v) for k, v in times.items() if v}
    labels = {"dd": "dd if=/dev/zero bs=1M conv=fsync", "save": "weightfill.save (fsync)",
              "verify": "weightfill.verify (page cache)",
              "torch": "torch init + save_file + fsync"}
    for k, t in med.items():
        print(f"{labels[k]:34s} {t:7.2f} s  {nbytes / t / 1e9:6.2f} GB/s")
    print(f"save / dd rate       {med['dd'] / med['save']:.2f}  (target >= 0.5)")
    if "torch" in med:
        print(f"save vs torch        {med['torch'] / med['save']:.2f}x (target >= 3)")
    print(f"verify / save rate   {med['save'] / med['verify']:.2f}  (target >= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
