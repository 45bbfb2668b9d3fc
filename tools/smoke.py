"""Smoke test of an installed weightfill (a wheel in a fresh environment): known answers, bit for
bit, under whichever kernel runs. CI runs it twice, with WEIGHTFILL_ISA=scalar and with the best
kernel of the CPU; cibuildwheel runs it on each wheel it builds.

Usage: python tools/smoke.py [--installed]  (needs only weightfill and its dependencies; exits
non-zero on a mismatch; --installed also requires weightfill to come from site-packages, not
from a checkout on sys.path).
"""

from __future__ import annotations

import os
import sys

import ml_dtypes
import numpy as np
import weightfill as wf

# Philox4x32-10 known answers of Random123 (tests/data/philox4x32_kat.txt, the three vectors of
# upstream's kat_vectors): (counter c0 c1 c2 c3, key k0 k1) -> four words. The key is the seed
# (k0 = low half), c2 c3 the stream, and block j = (c1 << 32 | c0) starts at word offset 4j.
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]

# Stream-spec version 1, seed 42, stream 0, elements 0..: the frozen table of tests/test_golden.py
# (computed by tests/spec_emulation.py, never by the library), float32 bit patterns.
FROZEN32 = {
    "uniform": [0x3F1CEAF0, 0x3EEFEA92, 0x3D95FA80, 0x3EAE8566,
                0x3F7CDB21, 0x3EA774D8, 0x3F038F5A, 0x3EE89C0C],
    "normal": [0xBF785E5B, 0x3E46ACEE, 0xBF9E28CE, 0x3FF64340,
               0xBD95E02D, 0x3E0E7A15, 0xBF8DA733, 0x3EA7430C],
    "truncated_normal": [0x3E8C1AD6, 0xBD9A123C, 0xBFA98CE8, 0xBEC7E8E9,
                         0x3FE8CDB4, 0xBEDA4886, 0x3D084E3E, 0xBDE04D0B],
}
FROZEN64_NORMAL = [0xBFE54AC03C1A032B, 0x3FF0938DB380D761, 0xBFF6F135C80FEFCB, 0x3FDB16FD5E6389C7]

FILLS = {
    "uniform": lambda shape, **kw: wf.uniform(shape, **kw),
    "normal": lambda shape, **kw: wf.normal(shape, **kw),
    "truncated_normal": lambda shape, **kw: wf.truncated_normal(shape, 0.0, 1.0, -2.0, 2.0, **kw),
}


def check(ok: bool, what: str, failures: list[str]) -> None:
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def main() -> int:
    failures: list[str] = []
    forced = os.environ.get("WEIGHTFILL_ISA")
    print(f"weightfill {wf.__version__} from {os.path.dirname(wf.__file__)}; Python "
          f"{sys.version.split()[0]}, numpy {np.__version__}; kernel {wf.isa()} of "
          f"{wf.available_isas()}, WEIGHTFILL_ISA={forced}, {wf.get_num_threads()} threads")
    if "--installed" in sys.argv[1:]:
        check("site-packages" in wf.__file__, "weightfill is the installed package", failures)
    if forced:
        check(wf.isa() == forced, f"WEIGHTFILL_ISA={forced} selects that kernel", failures)
    else:
        check(wf.isa() == wf.available_isas()[-1], "the best kernel is chosen", failures)

    for (c0, c1, c2, c3), (k0, k1), want in KAT:
        got = wf.random_raw(4, seed=k1 << 32 | k0, stream=c3 << 32 | c2,
                            offset=4 * (c1 << 32 | c0))
        check(got.tolist() == list(want), f"Philox4x32-10 known answer, key {k1:08x}{k0:08x}",
              failures)

    n = 1 << 16  # long enough for every thread and the vector loops, not only the tails
    for name, want in FROZEN32.items():
        full = FILLS[name](n, seed=42, stream=0)
        check(full[:8].view(np.uint32).tolist() == want, f"{name} float32 golden bits", failures)
        part = FILLS[name]((n,), seed=42, stream=0, region=(slice(12345, 23456),))
        check(np.array_equal(part.view(np.uint32), full[12345:23456].view(np.uint32)),
              f"{name} region equals the slice of the whole", failures)
    got = wf.normal(4, seed=42, stream=0, dtype=np.float64).view(np.uint64).tolist()
    check(got == FROZEN64_NORMAL, "normal float64 golden bits", failures)

    w32 = wf.normal((256, 256), seed=7, stream="layer.weight")
    bf = wf.normal((256, 256), seed=7, stream="layer.weight", dtype=ml_dtypes.bfloat16)
    check(np.array_equal(bf.view(np.uint16), w32.astype(ml_dtypes.bfloat16).view(np.uint16)),
          "bfloat16 is the float32 value rounded to nearest-even", failures)
    threads = wf.get_num_threads()
    wf.set_num_threads(1)
    one = wf.normal((256, 256), seed=7, stream="layer.weight")
    wf.set_num_threads(threads)
    check(np.array_equal(one.view(np.uint32), w32.view(np.uint32)),
          f"1 thread and {threads} threads give the same bits", failures)

    print("smoke test " + ("passed" if not failures else f"FAILED: {len(failures)} check(s)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
