"""Names, presets and budgets shared by the bench modules."""

from __future__ import annotations






SCHEMA = "weightfill-bench/1"

#: Peers in table order; "numpy" in ``--peers`` means both numpy generators.
PEERS = ("numpy-pcg64", "numpy-philox", "mkl_random", "torch", "jax")
PEER_LABELS = {
    "numpy-pcg64": "numpy PCG64",
    "numpy-philox": "numpy Philox",
    "mkl_random": "mkl_random",
    "torch": "torch",
    "jax": "JAX",
}

#: Table rows, in order.
CASES = ("uniform", "normal", "truncated_normal", "kaiming_normal", "xavier_uniform",
         "bfloat16_normal")

SIZE_PRESETS = {"tiny": 1 << 16, "small": 1 << 20, "medium": 1 << 24, "large": 1 << 26}
DEFAULT_SIZE = SIZE_PRESETS["medium"]  # 64 MiB of float32, twice this machine's L3
QUICK_SIZE = SIZE_PRESETS["small"]
DEFAULT_REPEATS = 5
QUICK_REPEATS = 3
DTYPES = ("float32", "float64", "float16", "bfloat16")

TRUNC_STD = 0.02  # GPT-style std; the bounds are ±2 std
TABLE_BUDGET_S = 4.0  # seconds of timed calls per contender and case before rounds are cut
# Pause before each timed call: thread pools (weightfill's and torch's OpenMP, JAX's, BLAS's)
# spin for a while after a call, and would otherwise slow the next contender down.
TABLE_SETTLE_S = 0.01
# Table contenders whose call takes less than this are timed right after one untimed call:
# after the pause a parallel call can wait milliseconds for a sleeping thread on a virtual
# machine (GNU OpenMP's threads stop spinning after about 10-20 ms), which would dominate
# calls this short and measure the hypervisor rather than the fill. Applied to every
# contender alike; slower calls are timed cold, the wake-up being a few % of them.
TABLE_HOT_BELOW_S = 0.05
BUSY_CORES = 0.1  # other processes' average use above which a row is flagged as noisy
TARGETS_BUDGET_S = 12.0

_MiB = 1 << 20
