"""What bounds `weightfill bench --models`' construction ratio (issue 12's goal: 8x).

    python benchmarks/bench_construction.py [--repeats 3] [--threads 2]

Runs, each in its own fresh process and alternating, GPT-2-medium's construction with torch's
default initialization, the meta construction plus ``weightfill.torch.materialize`` (the
benchmark's row), and the same with every tensor set to zeros (``rules={"*": "zeros"}``): the
cost of the new storage alone, as if the sampler cost nothing. Prints the medians and the two
ratios: the measured one, and the largest any sampler could reach on this machine.
"""

from __future__ import annotations

import argparse
import statistics

from weightfill.bench.models import GPT2_MEDIUM, _run_child


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    base = {"shape": GPT2_MEDIUM.__dict__, "threads": args.threads, "seed": 0, "repeats": 1}
    runs: dict[str, list[dict]] = {"torch_default": [], "meta": [], "meta_zeros": []}
    for _ in range(args.repeats):
        for kind in runs:
            runs[kind].append(_run_child({**base, "kind": kind}))
    torch_s = statistics.median(r["construction_s"] for r in runs["torch_default"])
    meta_s = statistics.median(r["meta_construction_s"] + r["materialize_s"]
                               for r in runs["meta"])
    zeros_s = statistics.median(r["meta_construction_s"] + r["materialize_s"]
                                for r in runs["meta_zeros"])
    sys_s = statistics.median(r["materialize_cpu"]["sys"] for r in runs["meta_zeros"])
    print(f"GPT-2-medium ({runs['meta'][0]['bytes'] / 2**20:.0f} MiB), {args.threads} threads, "
          f"median of {args.repeats} fresh processes each")
    print(f"  torch default construction          {torch_s:7.3f} s")
    print(f"  meta + materialize                  {meta_s:7.3f} s   ratio {torch_s / meta_s:5.1f}x")
    print(f"  meta + materialize, all zeros       {zeros_s:7.3f} s   ratio "
          f"{torch_s / zeros_s:5.1f}x   (kernel time {sys_s:.3f} s)")
    return {"torch_s": torch_s, "meta_s": meta_s, "zeros_s": zeros_s,
            "ratio": torch_s / meta_s, "bound": torch_s / zeros_s}


if __name__ == "__main__":
    main()
