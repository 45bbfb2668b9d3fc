"""torch's initialization laws, module type by module type (torch 2.13's ``reset_parameters``
and ``_reset_parameters``), as weightfill schemes.

Each law reads only the module's configuration and its tensors' shapes, never their values,
so it applies to modules on the meta device as well. A law maps names relative to the module
(``"weight"``, or ``"out_proj.bias"`` for a parent that overrides a child's law, as
MultiheadAttention and Transformer do) to a :class:`Law`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import nn

from ..fans import compute_fans
from ..gains import calculate_gain

__all__ = ["Law", "torch_law"]


@dataclass(frozen=True)
class Law:
    """A weightfill scheme with its arguments; ``resolved`` records what they amount to."""

    scheme: str
    params: dict[str, Any] = field(default_factory=dict)
    resolved: dict[str, Any] = field(default_factory=dict)
    zero_rows: tuple[int, ...] = ()


Laws = dict[str, Law]
ONES, ZEROS = Law("ones"), Law("zeros")


def _kaiming_uniform_sqrt5(weight: torch.Tensor) -> Law:
    """``kaiming_uniform_(w, a=sqrt(5))``: U(-b, b), b = sqrt(3) gain / sqrt(fan_in), which is
    1/sqrt(fan_in) up to rounding (pytorch#57109 explains the choice)."""
    a = math.sqrt(5)
    fan_in, fan_out = compute_fans(tuple(weight.shape), layout="torch")
    gain = calculate_gain("leaky_relu", a)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan_in) if fan_in else 0.0
    return Law("kaiming_uniform", {"a": a},
               {"fan_in": fan_in, "fan_out": fan_out, "gain": gain, "bound": bound})


def _fan_in_bias(weight: torch.Tensor) -> Law:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with torch's fan_in of the weight (0 when empty)."""
    fan_in, _ = compute_fans(tuple(weight.shape), layout="torch")
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return _uniform(bound, fan_in=fan_in)


def _uniform(bound: float, **resolved: Any) -> Law:
    return Law("uniform", {"low": -bound, "high": bound}, {"bound": bound, **resolved})


def _linear(m: Any) -> Laws:  # Linear, ConvNd, ConvTransposeNd
    laws = {"weight": _kaiming_uniform_sqrt5(m.weight)}
    if m.bias is not None:
        laws["bias"] = _fan_in_bias(m.weight)
    return laws


def _bilinear(m: nn.Bilinear) -> Laws:
    bound = 1 / math.sqrt(m.weight.size(1))
    laws = {"weight": _uniform(bound)}
    if m.bias is not None:
        laws["bias"] = _uniform(bound)
    return laws


def _embedding(m: Any) -> Laws:  # Embedding, EmbeddingBag
    rows = () if m.padding_idx is None else (int(m.padding_idx),)
    return {"weight": Law("normal", {"mean": 0.0, "std": 1.0}, zero_rows=rows)}


def _affine(weight: Optional[torch.Tensor], bias: Optional[torch.Tensor]) -> Laws:
    laws: Laws = {}
    if weight is not None:
        laws["weight"] = ONES
    if bias is not None:
        laws["bias"] = ZEROS
    return laws


def _layer_norm(m: Any) -> Laws:  # LayerNorm, GroupNorm, RMSNorm
    return _affine(getattr(m, "weight", None), getattr(m, "bias", None))


def _batch_norm(m: Any) -> Laws:  # BatchNorm*, SyncBatchNorm, InstanceNorm* (_NormBase)
    laws = _affine(m.weight, m.bias)
    if m.track_running_stats:
        laws.update(running_mean=ZEROS, running_var=ONES, num_batches_tracked=ZEROS)
    return laws


def _multihead_attention(m: nn.MultiheadAttention) -> Laws:
    laws: Laws = {}
    names = (["in_proj_weight"] if m._qkv_same_embed_dim else
             ["q_proj_weight", "k_proj_weight", "v_proj_weight"])
    for n in names:
        laws[n] = _xavier("xavier_uniform", getattr(m, n))
    if m.in_proj_bias is not None:
        laws["in_proj_bias"] = ZEROS
        laws["out_proj.bias"] = ZEROS  # overrides out_proj's own (Linear) law
    for n in ("bias_k", "bias_v"):
        if getattr(m, n) is not None:
            laws[n] = _xavier("xavier_normal", getattr(m, n))
    return laws


def _xavier(scheme: str, t: torch.Tensor) -> Law:
    fan_in, fan_out = compute_fans(tuple(t.shape), layout="torch")
    std = math.sqrt(2.0 / float(fan_in + fan_out)) if t.numel() else 0.0
    return Law(scheme, {"gain": 1.0}, {"fan_in": fan_in, "fan_out": fan_out, "std": std})


def _recurrent(m: Any) -> Laws:  # RNNBase (RNN, LSTM, GRU) and RNNCellBase
    stdv = 1.0 / math.sqrt(m.hidden_size) if m.hidden_size > 0 else 0.0
    return {n: _uniform(stdv, hidden_size=m.hidden_size)
            for n, p in m.named_parameters(recurse=False)}


def _prelu(m: nn.PReLU) -> Laws:
    return {"weight": Law("constant", {"value": float(m.init)})}


def _transformer(m: nn.Transformer) -> Laws:
    """nn.Transformer._reset_parameters: every parameter with more than one dimension is
    re-drawn with xavier_uniform_, over whatever its own module gave it."""
    return {n: _xavier("xavier_uniform", p) for n, p in m.named_parameters() if p.dim() > 1}


# Order matters only for subclasses listed below a base (none today); the first isinstance wins.
_TABLE: list[tuple[type, Callable[[Any], Laws], str]] = [
    (nn.Linear, _linear, "reset_parameters"),
    (nn.modules.conv._ConvNd, _linear, "reset_parameters"),
    (nn.Bilinear, _bilinear, "reset_parameters"),
    (nn.Embedding, _embedding, "reset_parameters"),
    (nn.EmbeddingBag, _embedding, "reset_parameters"),
    (nn.LayerNorm, _layer_norm, "reset_parameters"),
    (nn.GroupNorm, _layer_norm, "reset_parameters"),
    (nn.RMSNorm, _layer_norm, "reset_parameters"),
    (nn.modules.batchnorm._NormBase, _batch_norm, "reset_parameters"),
    (nn.MultiheadAttention, _multihead_attention, "_reset_parameters"),
    (nn.RNNBase, _recurrent, "reset_parameters"),
    (nn.RNNCellBase, _recurrent, "reset_parameters"),
    (nn.PReLU, _prelu, "reset_parameters"),
    (nn.Transformer, _transformer, "_reset_parameters"),
]


def torch_law(m: nn.Module) -> Optional[tuple[Laws, str]]:
    """(laws, "torch:<Class>") for a module type whose reset torch defines, or None.

    A subclass that overrides the reset method (its own initialization) is not covered: its
    own method is what torch would run.
    """
    for base, law, method in _TABLE:
        if isinstance(m, base):
            if getattr(type(m), method, None) is not getattr(base, method, None):
                return None
            if isinstance(m, nn.modules.lazy.LazyModuleMixin) and m.has_uninitialized_params():
                return None
            return law(m), f"torch:{type(m).__name__}"
    return None
