"""``weightfill bench``: weightfill's speed beside numpy, torch, JAX and mkl_random, in one process.

Four parts, chosen by flags (the table when none of ``--targets``, ``--memory``, ``--models`` is
given):

- **the table**: uniform, normal, truncated normal (±2σ), ``kaiming_normal`` and
  ``xavier_uniform`` on a 2-D shape, and bfloat16 normal. For each, the median time,
  throughput (values/s and GB/s) of weightfill and of every peer, weightfill's speed-up over
  each peer, and weightfill's fraction of a plain memory fill of the same buffer on the same
  threads (``weightfill.constant``'s string stores, the fastest of its calls: what writing the
  bytes alone costs, 1.3-2.3x the rate of a one-thread ``ndarray.fill`` on the development
  machine). weightfill's time is a median, so the fraction is a lower bound.
- ``--targets``: the speed targets at their own shapes, each met or missed.
- ``--memory``: the peak resident memory of each engine distribution's new-array call, each in
  a fresh subprocess, against the output's size.
- ``--models``: a GPT-2-medium-shaped torch model: torch's default construction against meta
  construction + ``weightfill.torch.materialize`` (fresh subprocesses, alternating),
  ``init_module`` against the modules' own ``reset_parameters``, and the meta path's peak
  RSS against the model's bytes (see :mod:`weightfill.bench.models`).

Method. Every contender fills the same preallocated buffer, faulted in beforehand, wherever its
API allows: weightfill through ``out=``, numpy through ``out=`` (its 16-bit results via a
float32 scratch array and a cast), torch in place on ``torch.from_numpy`` of the buffer. JAX
has no in-place form: its calls are jitted and allocate their result (``block_until_ready``).
mkl_random returns float64 arrays, which are cast into the buffer. One warm-up call each, then
rounds in which every contender runs once, in turn (interleaved, so drift and other load on
the machine hit all of them alike), each call after a 10 ms pause that lets the previous
contender's spinning thread pool go to sleep; each contender's median. In the table, a
contender whose call takes under 50 ms is timed right after one untimed call of its own (its
threads awake: a thread woken after an idle pause can take milliseconds on a virtual
machine, which would dominate such calls); the same rule for all. A contender whose
warm-up shows it would need more than a few seconds in all gets fewer rounds (never fewer than
3 in the table), and the output says so. The CPU time other processes used meanwhile (from
/proc/stat) is reported with every result, and rows measured on a busy machine are flagged.

torch, JAX, mkl_random and matplotlib are imported here, on demand, never by ``import
weightfill``.
"""


from __future__ import annotations

__all__ = ["add_arguments", "run", "run_table", "run_targets", "run_memory", "run_models", "PEERS",
           "CASES"]

from ._constants import (BUSY_CORES, CASES, DEFAULT_REPEATS, DEFAULT_SIZE, DTYPES, PEERS, PEER_LABELS, QUICK_REPEATS, QUICK_SIZE, SCHEMA, SIZE_PRESETS, TABLE_BUDGET_S, TABLE_HOT_BELOW_S, TABLE_SETTLE_S, TARGETS_BUDGET_S, TRUNC_STD, _MiB,)  # noqa: F401
from .timing import (Contender, _rounds_for, time_interleaved,)  # noqa: F401
from .machine import (CpuMonitor, _loadavg, _threads, cpu_name, machine_info,)  # noqa: F401
from .contenders import (Op, _buffer, _contenders, _jax_dtype, _jax_fn, _measure, _memfill_fn, _mkl_fn, _numpy_fn, _reject_outside, _threads_text, _torch_fn, _torch_view, _wf_fn, load_peers, make_ops,)  # noqa: F401
from .config import (Config, Progress, _available_memory, _table_memory_need, default_shape2d, parse_cases, parse_peers, parse_shape, parse_size,)  # noqa: F401
from .table import (_table_cases, run_table,)  # noqa: F401
from .targets import (PAIRED_ROUNDS, TARGETS, Target, _target_pair, _target_rows, run_targets,)  # noqa: F401
from .memory import (_MEMORY_CHILD, measure_peak_rss, memory_specs, run_memory,)  # noqa: F401
from .models import (GPT2_MEDIUM, GPT2_TINY, MODEL_GOALS, build_gpt2, run_models,)  # noqa: F401
from .formatting import (_clip, _fmt_other, _g, _header, _ms, _skipped_lines, format_markdown, format_memory, format_models, format_table, format_targets,)  # noqa: F401
from .plotting import (plot_speedups,)  # noqa: F401
from .cli import (add_arguments, config_from_args, run,)  # noqa: F401
