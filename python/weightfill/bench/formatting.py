"""Text and Markdown renderings of a result."""

from __future__ import annotations

import statistics
from typing import Any, Optional


from ._constants import BUSY_CORES, PEER_LABELS, _MiB
from .contenders import _threads_text


# ----------------------------------------------------------------------------------------------
# Output


def _g(x: float) -> str:
    """Values per second, short: 3.21 G, 512 M."""
    if x >= 1e9:
        return f"{x / 1e9:.2f} G"
    if x >= 1e6:
        return f"{x / 1e6:.0f} M"
    return f"{x / 1e3:.0f} k"


def _ms(t: float) -> str:
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def _header(result: dict[str, Any]) -> list[str]:
    m, c = result["machine"], result["config"]
    v = m["versions"]
    peers = ", ".join(f"{k} {v[k]}" for k in ("torch", "jax", "mkl_random") if k in v)
    lines = [
        f"weightfill {v['weightfill']} bench: {m['cpu']}, {m['cores']} cores, kernel {m['isa']}, "
        f"{_threads_text(m['threads'])} ({m['thread_backend']})",
        f"numpy {v['numpy']}" + (f", {peers}" if peers else "") + f"; python {v['python']}",
        f"median of {c['repeats']} timed calls after a warm-up, contenders interleaved; "
        f"{_fmt_other(m.get('other_cpu'))}",
    ]
    return lines


def _fmt_other(x: Optional[dict[str, float]]) -> str:
    if not x:
        return "other load unknown"
    return (f"other processes used {x['other_processes']:.2f} cores on average meanwhile"
            + (f", the hypervisor stole {x['steal']:.2f}" if x["steal"] >= 0.01 else ""))


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(result: dict[str, Any]) -> str:
    lines = _header(result)
    lines.append("")
    reps = result["config"]["repeats"]
    for case in result["table"]["cases"]:
        lines.append(f"{case['title']}: {case['values']:,} values, "
                     f"{case['bytes'] / _MiB:.1f} MiB")
        lines.append(f"  {'contender':<13}{'call':<45}{'median':>9}{'values/s':>10}{'GB/s':>7}"
                     f"  speed-up")
        w = case["weightfill"]
        rows = [("weightfill", w, f"{w['fraction_of_memfill']:.0%} of memory fill")]
        rows += [(PEER_LABELS[p["peer"]], p, f"{p['speedup']:.1f}x") for p in case["peers"]]
        rows.append(("memory fill", case["memfill"], "(ceiling)"))
        for who, r, tail in rows:
            if r.get("statistic") == "min":
                n = f" (fastest of {r['repeats']})"
            else:
                n = "" if r["repeats"] == reps else f" (median of {r['repeats']})"
            lines.append(f"  {who:<13}{_clip(r['call'], 44):<45}{_ms(r['seconds']):>9}"
                         f"{_g(r['values_per_s']):>10}{r['gbps']:>7.2f}  {tail}{n}")
        for key, why in case["not_applicable"].items():
            lines.append(f"  {PEER_LABELS[key]:<13}n/a: {why}")
        busy = case.get("other_cpu")
        if busy and busy["other_processes"] + busy["steal"] >= BUSY_CORES:
            lines.append(f"  (noisy: {_fmt_other(busy)})")
        lines.append("")
    lines += _skipped_lines(result["table"]["skipped"])
    lines += [
        "speed-up: the peer's median time over weightfill's. Into the same buffer: weightfill "
        "and numpy (out=), torch (in place on",
        "torch.from_numpy), mkl_random (float64 result cast in); JAX allocates its result "
        "(jitted, block_until_ready).",
        "calls under 50 ms are timed right after an untimed one (threads awake). memory fill: "
        "weightfill.constant into the same buffer,",
        "on weightfill's threads, the fastest call. "
        f"Elapsed {result['elapsed_s']:.1f} s.",
    ]
    return "\n".join(lines)


def _skipped_lines(skipped: dict[str, str]) -> list[str]:
    if not skipped:
        return []
    return ["skipped: " + "; ".join(f"{PEER_LABELS[k]} ({why})" for k, why in skipped.items())]


def format_markdown(result: dict[str, Any]) -> str:
    """The table as README markdown: a row per operation, a column per peer."""
    table = result["table"]
    keys = table["peers"]
    head = ["operation", "weightfill values/s (GB/s)", "of memory fill"] + [
        PEER_LABELS[k] + " (speed-up)" for k in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for case in table["cases"]:
        w = case["weightfill"]
        cells = [case["title"], f"{_g(w['values_per_s'])}/s ({w['gbps']:.1f} GB/s)",
                 f"{w['fraction_of_memfill']:.0%}"]
        by = {p["peer"]: p for p in case["peers"]}
        for k in keys:
            if k in by:
                p = by[k]
                cells.append(f"{_g(p['values_per_s'])}/s (**{p['speedup']:.1f}x**)")
            else:
                cells.append("n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_targets(result: dict[str, Any]) -> str:
    lines = [] if "table" in result else _header(result) + [""]
    t = result["targets"]
    if t["quick_shapes"]:
        lines.append("targets (--quick: reduced shapes, not the targets' own)")
    else:
        lines.append("targets")
    lines.append(f"{'':2}{'target':<62}{'shape':>14}{'weightfill':>12}{'peer':>10}{'ratio':>9}"
                 f"  result")
    for r in t["targets"]:
        shape = "x".join(str(d) for d in r["shape"])
        if r["met"] is None:
            lines.append(f"{'':2}{r['goal']:<62}{shape:>14}  skipped: {r.get('skipped', '')}")
            continue
        verdict = ("met" if r["met"] else "MISSED") if r["judged"] else "not judged (--quick)"
        if r.get("paired"):  # not the ratio of the medians printed beside it
            verdict += " (median of paired per-round ratios"
            if r["judged"] and r["met"] and r["ratio"] < r["required"]:
                verdict += f"; within the {r['tolerance']:.0%} noise of equal work"
            verdict += ")"
        lines.append(f"{'':2}{r['goal']:<62}{shape:>14}{_ms(r['weightfill']['seconds']):>12}"
                     f"{_ms(r['peer']['seconds']):>10}{r['ratio']:>8.2f}x  {verdict}")
        if r.get("note"):
            lines.append(f"{'':4}{r['note']}")
        busy = r.get("other_cpu")
        if busy and busy["other_processes"] + busy["steal"] >= BUSY_CORES:
            lines.append(f"{'':4}(noisy: {_fmt_other(busy)})")
    return "\n".join(lines)


def format_memory(result: dict[str, Any]) -> str:
    lines = [] if ("table" in result or "targets" in result) else _header(result)[:1] + [""]
    lines.append("memory: peak RSS growth of a new-array call (fresh process; allowed: output "
                 "+ 1% + 16 MiB)")
    lines.append(f"{'':2}{'call':<34}{'shape':>12}{'output':>12}{'growth':>12}{'excess':>11}"
                 f"  result")
    for r in result["memory"]["memory"]:
        dt = r["dtype"] or "uint32"
        method = r["kwargs"].get("method")
        call = f"{r['func']}({dt}" + (f", method={method!r})" if method else ")")
        shape = "x".join(str(d) for d in r["shape"])
        if r["met"] is None:
            verdict = f"{r['growth_over_output']:.2f}x the output (documented, no target)"
        else:
            verdict = "met" if r["met"] else "MISSED"
        lines.append(f"{'':2}{call:<34}{shape:>12}{r['output_bytes'] / _MiB:>8.1f} MiB"
                     f"{r['growth_bytes'] / _MiB:>8.1f} MiB{r['excess_bytes'] / _MiB:>7.1f} MiB"
                     f"  {verdict}")
    return "\n".join(lines)


def _verdict(part: dict[str, Any], judged: bool) -> str:
    if not judged:
        return "(not judged)"
    return "met" if part["met"] else "MISSED"


def _cpu_times(runs: list[dict[str, float]]) -> str:
    med = statistics.median
    return f"user {med([x['user'] for x in runs]):.2f} s, sys {med([x['sys'] for x in runs]):.2f} s"


def format_models(result: dict[str, Any]) -> str:
    lines = [] if len(result["config"]["parts"]) > 1 else _header(result)[:1] + [""]
    if "skipped" in result["models"]:
        lines.append(f"models: skipped: {result['models']['skipped']}")
    med = statistics.median
    for r in result["models"]["models"]:
        sh, judged = r["shape"], r["judged"]
        lines.append(f"models: {r['name']} (vocab {sh['vocab']}, d {sh['d']}, {sh['blocks']} "
                     f"blocks, MLP {sh['mlp']}, tied head): {r['bytes'] / _MiB:.0f} MiB of "
                     f"{r['dtype']}, {_threads_text(r['threads'])}; "
                     f"{_fmt_other(r.get('other_cpu'))}")
        if not judged:
            lines.append("  (--quick: a tiny model; the goals are for GPT-2-medium)")
        c, i, m = r["construction"], r["init_module"], r["peak_rss"]
        lines.append(f"  construction, fresh processes (median of {len(c['torch_default_s'])}): "
                     f"torch default {_ms(med(c['torch_default_s']))}; meta "
                     f"{_ms(med(c['meta_construction_s']))} + materialize "
                     f"{_ms(med(c['materialize_s']))} = {_ms(med(c['meta_total_s']))}: "
                     f"{c['ratio']:.1f}x (goal >= {c['required']:g}x) {_verdict(c, judged)}")
        lines.append(f"    CPU time: torch default {_cpu_times(c['torch_default_cpu'])}; "
                     f"materialize {_cpu_times(c['materialize_cpu'])}")
        lines.append(f"    (a first meta construction without weightfill.torch.patch(): "
                     f"{_ms(med(c['meta_plain_first_s']))}, torch importing torch._dynamo)")
        lines.append(f"  init_module on the CPU model {_ms(med(i['init_module_s']))}, the "
                     f"modules' reset_parameters {_ms(med(i['reset_parameters_s']))}: "
                     f"{i['ratio']:.1f}x (goal >= {i['required']:g}x) {_verdict(i, judged)}")
        lines.append(f"  peak RSS growth of meta + materialize {m['growth_bytes'] / _MiB:.0f} MiB"
                     f" = {m['growth_over_model']:.3f}x the model (goal <= "
                     f"{m['required']:g}x) {_verdict(m, judged)}")
    return "\n".join(lines)
