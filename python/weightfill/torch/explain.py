"""``weightfill.torch.explain``: the ``weightfill explain`` report for a real torch model.

Data flow: the model is deep-copied (the caller's weights, gradients and BatchNorm statistics
are never touched), re-initialized with :func:`weightfill.torch.init_module` (``seed`` given)
or kept as initialized (``seed=None``), and run forward on ``example_input`` and backward from
a standard-normal output gradient. A forward hook on every Linear and Conv layer records the
statistics of its output ``z`` and registers a hook on ``z`` that records ``dLoss/dz``.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from .. import explain as _ex
from ..distributions import normal
from ._model import Rules, init_module

__all__ = ["explain"]

_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)


def explain(model: nn.Module, example_input: Any, *, seed: Optional[int],
            rules: Optional[Rules] = None, label: Optional[str] = None) -> _ex.Report:
    """Variance propagation through ``model``'s Linear and Conv layers, measured.

    Parameters
    ----------
    model : torch.nn.Module
        Copied first (``copy.deepcopy``); the model itself is left as it was. The copy runs in
        the model's mode (``train()`` BatchNorm normalizes with batch statistics).
    example_input : torch.Tensor or tuple of tensors
        Passed to ``model(*inputs)``; the output must be a floating tensor.
    seed : int or None
        ``int``: the copy is re-initialized by ``init_module(copy, seed=seed, rules=rules)``.
        ``None``: measured as initialized (``rules`` must then be None).
    rules : mapping, optional
        As in :func:`weightfill.torch.init_module` (``{"*.weight": "kaiming_normal"}``).
    label : str, optional
        The report's key for this run (default: "torch default", the rules, or
        "as initialized").

    Returns
    -------
    weightfill.explain.Report
        One scheme entry (the label); per hooked layer call, in call order: ``name``,
        ``forward_std``, ``backward_std``, ``predicted_forward_std`` (``sqrt(fan_in * mean(W^2)
        * mean(x^2) + mean(b^2))`` from the layer's measured input: the variance formula one
        layer at a time; the activations between layers are the model's own),
        ``dead_fraction``, ``distinct_rows`` and a verdict. ``Report.merge`` puts several runs
        in one table or plot.

    Reproducibility
    ---------------
    The output gradient is ``weightfill.normal(output.shape, seed=seed or 0,
    stream="explain.output_grad")``; torch's generator (dropout) is seeded from the same seed
    inside ``torch.random.fork_rng``, so the caller's generator state is unchanged.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    inputs = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    if not inputs or not all(isinstance(t, torch.Tensor) for t in inputs):
        raise TypeError("example_input must be a torch.Tensor or a tuple of tensors")
    if seed is None and rules is not None:
        raise ValueError("rules need a seed (seed=None measures the model as initialized)")
    m = copy.deepcopy(model)
    if seed is not None:
        init_module(m, seed=seed, rules=rules)
    if label is None:
        label = ("as initialized" if seed is None else
                 "torch default" if not rules else f"rules {dict(rules)}")
    names = {mod: name for name, mod in m.named_modules() if isinstance(mod, _LAYERS)}
    if not names:
        raise ValueError(f"model: {type(model).__name__} has no Linear or Conv layer to measure")
    rows: list[dict[str, Any]] = []

    def forward_hook(mod: nn.Module, args: tuple, out: torch.Tensor) -> None:
        z = out.detach().double()
        x = args[0].detach().double()
        w = mod.weight.detach().double()
        # fan_in = w[0].numel() for Linear (out, in) and Conv (out, in/groups, *k); a
        # transposed conv's weight is (in, out/groups, *k): no prediction.
        pred: Optional[float] = None
        if not getattr(mod, "transposed", False):
            pred = w[0].numel() * float((w * w).mean()) * float((x * x).mean())
            if mod.bias is not None:
                pred += float((mod.bias.detach().double() ** 2).mean())
        units = z.movedim(1 if z.dim() > 2 and not isinstance(mod, nn.Linear) else -1, -1)
        units = units.reshape(-1, units.shape[-1]).float().numpy()
        calls = sum(r["module"] is mod for r in rows)
        row = {"module": mod, "linear": isinstance(mod, nn.Linear),
               "name": names[mod] + (f" (call {calls + 1})" if calls else ""),
               "forward_std": float(z.std(unbiased=False)) if z.numel() else 0.0,
               "predicted_forward_std": None if pred is None else math.sqrt(pred),
               "distinct_rows": _ex.distinct_rows(units),
               "backward_std": None, "dead_fraction": None, "width": int(units.shape[-1])}
        rows.append(row)
        if out.requires_grad:
            out.register_hook(lambda g, row=row: _record_grad(row, g))

    handles = [mod.register_forward_hook(forward_hook) for mod in names]
    s = 0 if seed is None else seed
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s % (1 << 63))
            try:
                out = m(*inputs)
            except (RuntimeError, ValueError, TypeError, IndexError) as err:
                shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
                raise ValueError(f"example_input: {type(model).__name__} failed on input of "
                                 f"shape {shapes}: {err}") from err
            if not isinstance(out, torch.Tensor) or not out.is_floating_point():
                raise TypeError("model's output must be a floating torch.Tensor, not "
                                f"{type(out).__name__}")
            g = torch.from_numpy(normal(tuple(out.shape), seed=s, stream=_ex.GRAD_STREAM,
                                        dtype=np.float32)).to(out.dtype)
            if out.requires_grad:
                out.backward(g)
    finally:
        for h in handles:
            h.remove()
    fwd = [r["forward_std"] for r in rows]
    bwd = [r["backward_std"] for r in rows]
    d = {"name": [r["name"] for r in rows], "width": [r["width"] for r in rows],
         "forward_std": fwd, "backward_std": bwd,
         "predicted_forward_std": [r["predicted_forward_std"] for r in rows],
         "predicted_backward_std": [None] * len(rows),
         "dead_fraction": [r["dead_fraction"] for r in rows],
         "distinct_rows": [r["distinct_rows"] for r in rows]}
    d["verdict"] = _ex.verdict(fwd, bwd, d["distinct_rows"], d["width"])
    settings = {"model": type(model).__name__,
                "input_shape": [list(t.shape) for t in inputs], "seed": seed,
                "layers": d["name"]}
    report = _ex.Report(settings)
    report.schemes[label] = d
    return report


def _record_grad(row: dict[str, Any], g: torch.Tensor) -> None:
    gd = g.detach().double()
    row["backward_std"] = float(gd.std(unbiased=False)) if gd.numel() else 0.0
    axis = -1 if row["linear"] or gd.dim() <= 2 else 1
    flat = gd.movedim(axis, -1).reshape(-1, gd.shape[axis])
    row["dead_fraction"] = float((flat == 0).all(dim=0).double().mean())
