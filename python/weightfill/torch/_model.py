"""Whole torch models: every parameter and buffer by qualified name, with torch's law or a
user's rule, filled in one fill plan (docs/torch.md).

Data flow: ``plan(module)`` walks the module tree once and produces one :class:`Slot` per
distinct tensor (tied tensors once, their other names as aliases) with its manifest entry;
``manifest()`` returns the entries, ``init_module()`` fills the tensors in place, and
``materialize()`` first gives meta tensors real CPU storage. A DTensor's slot also holds the
region of the full tensor its local shard is (``_dtensor.region``), and the fill writes that
region into ``to_local()``.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Union

import torch
from torch import nn

from .. import _engine
from ..manifest import Manifest, TensorEntry
from ..params import DETERMINISTIC, parse_rule
from ..streams import normalize_seed, stream_id
from . import _dtensor
from . import init as _init
from ._laws import Law, torch_law
from ._tensors import allocate, dtype_name, numpy_view

__all__ = ["init_module", "materialize", "manifest"]

RuleValue = Union[str, tuple, Mapping[str, Any]]
Rules = Mapping[Union[str, type], Any]


@dataclass
class Slot:
    """One distinct tensor of the model: where it lives and what fills it."""

    name: str  # qualified name (prefix first), the stream
    owner: nn.Module  # the module holding it under ``local``
    owner_name: str
    local: str
    tensor: torch.Tensor
    is_buffer: bool
    persistent: bool = True  # in the state dict (non-persistent buffers are not)
    aliases: list[str] = field(default_factory=list)
    law: Optional[Law] = None
    source: str = ""
    entry: Optional[TensorEntry] = None
    sharded: bool = False  # a DTensor: this rank fills ``region`` of the full tensor
    region: Optional[tuple[slice, ...]] = None


def _qualify(prefix: str, *parts: str) -> str:
    return ".".join(p for p in (prefix, *parts) if p)


def _check_module(module: object) -> nn.Module:
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, not {type(module).__name__}")
    return module


def _check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
    return prefix


def _slots(module: nn.Module, prefix: str) -> dict[str, Slot]:
    """Every distinct parameter and buffer by canonical qualified name (the first name the
    module tree gives it; later names become aliases)."""
    slots: dict[str, Slot] = {}
    by_id: dict[int, Slot] = {}
    for mname, m in module.named_modules(remove_duplicate=False):
        for local, t in list(m._parameters.items()) + list(m._buffers.items()):
            if t is None:
                continue
            name = _qualify(prefix, mname, local)
            if id(t) in by_id:
                known = by_id[id(t)]
                if name != known.name and name not in known.aliases:
                    known.aliases.append(name)
                continue
            is_buffer = local in m._buffers
            persistent = not (is_buffer and local in m._non_persistent_buffers_set)
            slots[name] = by_id[id(t)] = Slot(name, m, mname, local, t, is_buffer, persistent)
            if _dtensor.is_dtensor(t):
                slots[name].sharded = True
                slots[name].region = _dtensor.region(name, t)
    return slots


def _law_of(module: nn.Module, prefix: str) -> dict[str, tuple[Law, str]]:
    """Qualified name -> (torch's law, source) for every tensor a known module type resets.
    Parents come after their descendants, so a parent that re-initializes a child's tensor
    (MultiheadAttention's out_proj.bias, Transformer's matrices) wins, as in torch, where the
    parent's reset runs after its children were built."""
    laws: dict[str, tuple[Law, str]] = {}
    for mname, m in reversed(list(module.named_modules())):
        found = torch_law(m)
        if found is None:
            continue
        table, source = found
        for local, law in table.items():
            laws[_qualify(prefix, mname, local)] = (law, source)
    return laws


# ----------------------------------------------------------------------------------------------
# Rules


def _rule_law(value: Any, where: str) -> Law:
    """A rule's value as a Law: "scheme" or ("scheme", {params}); shapes are torch's
    (out, in, *kernel), so Keras/JAX-family schemes read them with ``layout="torch"``."""
    return Law(*parse_rule(value, where, layout="torch"))


def _check_rules(rules: Optional[Rules]) -> list[tuple[Any, Any]]:
    if rules is None:
        return []
    if not isinstance(rules, Mapping):
        raise TypeError(f"rules must be a mapping of glob pattern or module class to a "
                        f"scheme, not {type(rules).__name__}")
    checked = []
    for key, value in rules.items():
        if isinstance(key, str):
            checked.append((key, _rule_law(value, repr(key))))
        elif isinstance(key, type) and issubclass(key, nn.Module):
            where = key.__name__
            if isinstance(value, Mapping):
                checked.append((key, {n: _rule_law(v, f"{where}][{n!r}")
                                      for n, v in value.items()}))
            else:
                checked.append((key, _rule_law(value, where)))
        else:
            raise TypeError(f"rules: a key must be a glob pattern (str) or an nn.Module "
                            f"subclass, not {key!r}")
    return checked


def _match_rule(slot: Slot, rules: list[tuple[Any, Any]]) -> Optional[tuple[Law, str]]:
    """The first rule that covers ``slot`` (any of its names, for globs), or None."""
    for key, value in rules:
        if isinstance(key, str):
            if any(fnmatch.fnmatchcase(n, key) for n in (slot.name, *slot.aliases)):
                return value, f"rule:{key}"
        elif isinstance(slot.owner, key):
            if isinstance(value, dict):
                if slot.local in value:
                    return value[slot.local], f"rule:{key.__name__}.{slot.local}"
            else:
                return value, f"rule:{key.__name__}"
    return None


# ----------------------------------------------------------------------------------------------
# Planning


@dataclass
class Plan:
    slots: list[Slot]  # filled by a law or a rule
    fallback: list[tuple[nn.Module, list[Slot]]]  # modules whose own reset fills these slots
    unset: list[Slot]  # non-persistent buffers nothing covers (kept as they are)
    order: list[str]  # every slot's name, in module-tree order
    seed: int

    def manifest(self) -> Manifest:
        """The entries of the state dict's tensors, in module-tree order."""
        by_name = {s.name: s for s in self.slots}
        by_name.update((s.name, s) for _, ss in self.fallback for s in ss)
        kept = [by_name[n] for n in self.order if n in by_name and by_name[n].persistent]
        return Manifest((s.entry for s in kept if s.entry is not None),
                        unrecorded=[s.name for s in kept if s.entry is None])


def _entry(slot: Slot, law: Law, source: str, seed: int) -> TensorEntry:
    t = slot.tensor
    return TensorEntry(
        name=slot.name, shape=tuple(t.shape), dtype=dtype_name(t.dtype, slot.name),
        scheme=law.scheme, params=law.params, seed=seed, stream=slot.name,
        resolved=law.resolved, source=source, zero_rows=law.zero_rows,
        aliases=tuple(slot.aliases))


def plan(module: nn.Module, seed: int, rules: Optional[Rules], prefix: str) -> Plan:
    slots = _slots(module, prefix)
    laws = _law_of(module, prefix)
    checked = _check_rules(rules)
    planned: list[Slot] = []
    unset: list[Slot] = []
    fallback: dict[int, tuple[nn.Module, list[Slot]]] = {}
    for slot in slots.values():
        chosen = _match_rule(slot, checked) or laws.get(slot.name)
        if chosen is None:
            if slot.sharded and slot.persistent:
                raise ValueError(
                    f"{slot.name}: a DTensor of {type(slot.owner).__name__}, a module type "
                    "weightfill has no law for; its own reset_parameters cannot fill a shard: "
                    f"give a rule, e.g. rules={{{slot.name!r}: ('normal', {{'std': 0.02}})}}")
            if callable(getattr(slot.owner, "reset_parameters", None)):
                fallback.setdefault(id(slot.owner), (slot.owner, []))[1].append(slot)
            elif not slot.persistent:
                unset.append(slot)
            else:
                kind = "buffer" if slot.is_buffer else "parameter"
                raise ValueError(
                    f"{slot.name}: no initialization for this {kind} of "
                    f"{type(slot.owner).__name__} (a module type weightfill does not know, "
                    f"without reset_parameters); give a rule, e.g. rules={{{slot.name!r}: "
                    "'zeros'}")
            continue
        slot.law, slot.source = chosen
        try:
            slot.entry = _entry(slot, slot.law, slot.source, seed)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{slot.name}: {err}") from err
        planned.append(slot)
    _check_arguments(planned)
    return Plan(planned, list(fallback.values()), unset, list(slots), seed)


def _check_arguments(slots: Iterable[Slot]) -> None:
    """Argument errors (a 1-D tensor given xavier, a bad mode) before anything is written:
    each entry makes an empty region of itself."""
    for s in slots:
        e = s.entry
        assert e is not None
        if e.scheme in ("orthogonal", "delta_orthogonal") or not e.shape or \
                e.dtype in ("int64", "int32"):
            continue
        try:
            e.tensor((slice(0, 0),))
        except (TypeError, ValueError) as err:
            raise type(err)(f"{s.name} ({e.source}, {e.scheme}): {err}") from err


# ----------------------------------------------------------------------------------------------
# Filling


def _fill(p: Plan) -> None:
    """Modules that reset themselves first, then every planned slot as one fill plan (so a
    rule beats what a module's own reset wrote), then the padding rows."""
    _run_fallbacks(p)
    copies: list[tuple[torch.Tensor, torch.Tensor]] = []
    with _engine.deferred():
        for s in p.slots:
            e = s.entry
            assert e is not None
            t = _writable(s)
            if t.is_meta:
                raise ValueError(f"{s.name} is on the meta device: use materialize()")
            if s.sharded and t.numel() == 0:  # an empty shard, or a rank outside the mesh
                continue
            direct = t.device.type == "cpu" and t.is_contiguous()
            target = t if direct else allocate(tuple(t.shape), t.dtype)
            e._draw(s.region, numpy_view(target))
            if not direct:  # channels_last or another device: logical C order, as torch does
                copies.append((t, target))
    with torch.no_grad():
        for t, target in copies:
            t.copy_(target)
        for s in p.slots:
            t = _writable(s)
            first = s.region[0].start if s.region else 0
            for r in s.entry.zero_rows if s.entry is not None else ():
                if 0 <= r - first < (t.shape[0] if t.dim() else 0):  # rows of this shard only
                    t[r - first].zero_()


def _writable(s: Slot) -> torch.Tensor:
    """What a slot's fill writes: the tensor, or a DTensor's local shard (region ``s.region``)."""
    return _dtensor.local(s.tensor) if s.sharded else s.tensor


def _run_fallbacks(p: Plan) -> None:
    """Modules weightfill has no law for run their own reset_parameters, with torch.nn.init
    routed to weightfill and every call on one of their tensors drawing from that tensor's
    named stream. torch's own generator (for code that calls ``tensor.normal_()``) is seeded
    from (seed, the module's first tensor name) for the call and restored after, so the result
    is reproducible and independent of the other modules."""
    for m, slots in p.fallback:
        names = {id(s.tensor): s.name for s in slots}
        with torch.random.fork_rng(devices=[]), _init.patch(), \
                _init._named_streams(names, p.seed), _init._record() as calls:
            torch.manual_seed(_torch_seed(p.seed, slots[0].name))
            with torch.no_grad():
                m.reset_parameters()  # type: ignore[operator]
        last = {id(c[0]): c for c in calls}
        for s in slots:
            c = last.get(id(s.tensor))
            random = c is not None and c[1] not in DETERMINISTIC
            if c is None or (random and c[4] != s.name):
                s.entry = None  # set by code weightfill cannot see: not regenerable
                continue
            s.entry = TensorEntry(
                name=s.name, shape=tuple(s.tensor.shape),
                dtype=dtype_name(s.tensor.dtype, s.name), scheme=c[1], params=c[2],
                seed=p.seed, stream=s.name,
                source=f"torch:{type(m).__name__}.reset_parameters", aliases=tuple(s.aliases))


def _torch_seed(seed: int, name: str) -> int:
    return (seed ^ stream_id(f"torch.manual_seed:{name}")) % (1 << 63)


# ----------------------------------------------------------------------------------------------
# Public API


def manifest(module: nn.Module, *, seed: int, rules: Optional[Rules] = None,
             prefix: str = "") -> Manifest:
    """The :class:`~weightfill.Manifest` :func:`init_module` would produce for ``module``,
    without touching a tensor: works on a model built on the meta device, so a checkpoint of
    a model larger than memory can be written from it (``weightfill.save``).

    Parameters
    ----------
    module, seed, rules, prefix
        As in :func:`init_module`. Every tensor must be covered by a torch law or a rule
        (a module's own ``reset_parameters`` cannot be described without running it).

    Returns
    -------
    Manifest
    """
    p = plan(_check_module(module), normalize_seed(seed), rules, _check_prefix(prefix))
    names = [s.name for _, ss in p.fallback for s in ss if s.persistent]
    if names:
        raise ValueError(f"no torch law or rule covers {', '.join(names)} (their modules "
                         "reset themselves, which cannot be described without running "
                         "them); give rules for them")
    return p.manifest()


def init_module(module: nn.Module, *, seed: int, rules: Optional[Rules] = None,
                prefix: str = "") -> Manifest:
    """Re-initializes every parameter and buffer of ``module`` in place, each with the law
    torch's own ``reset_parameters`` gives it, or the first rule that covers it.

    Parameters
    ----------
    module : torch.nn.Module
        On the CPU (use :func:`materialize` for a meta-device model). Tied tensors are filled
        once. Parameters and buffers may be DTensors (FSDP2, tensor parallel,
        ``distribute_tensor``; placements ``Shard(d)``, ``Replicate()``): each rank fills its
        local shard with that region of the full tensor, without communication.
    seed : int in [0, 2**64)
    rules : mapping, optional
        Glob patterns of qualified names (``"*.bias"``, ``"layers.*.attn.*.weight"``) or
        module classes, in order, to a scheme name or ``(scheme, {params})``; a class may map
        to ``{"weight": ..., "bias": ...}``. Any name of :data:`weightfill.params.SCHEMES`;
        schemes with a ``layout`` read shapes as torch does (``layout="torch"``) unless the
        params say otherwise. The first matching rule wins over torch's law.
    prefix : str
        Put in front of every qualified name (and so every stream).

    Returns
    -------
    Manifest
        One entry per tensor in the state dict, in its order; ``entry.source`` says which law
        or rule chose it. Tensors that a module's own ``reset_parameters`` set without
        ``torch.nn.init`` (from torch's generator, seeded from (seed, name): reproducible, but
        not describable) have no entry and are listed in ``manifest.unrecorded``.

    Reproducibility
    ---------------
    Tensor ``name`` equals ``weightfill.<scheme>(shape, **params, seed=seed, stream=name)``
    bit for bit (its manifest entry), whatever the other modules, their order, the thread
    count or the machine. A module type without a torch law and without a rule runs its own
    ``reset_parameters`` with ``torch.nn.init`` routed to weightfill on the tensors' named
    streams; code in it that uses torch's generator directly is seeded from (seed, module
    name).
    """
    p = plan(_check_module(module), normalize_seed(seed), rules, _check_prefix(prefix))
    _fill(p)
    return p.manifest()


def materialize(module: nn.Module, *, seed: int, rules: Optional[Rules] = None,
                device: Union[str, torch.device] = "cpu", prefix: str = "") -> Manifest:
    """Gives a model built on the meta device (``with torch.device("meta"):``) real storage
    and fills it: the same values :func:`init_module` gives the same model built on the CPU,
    bit for bit.

    Each tensor gets its own CPU storage from weightfill's allocator (untouched 4 KiB pages
    that the plan's threads fault in; see ``_tensors.allocate``), then every tensor
    is filled in one fill plan. Tied tensors stay tied. Tensors already on the CPU are
    re-initialized in place. A DTensor parameter (FSDP2's ``fully_shard`` on a meta model,
    tensor parallel) gets storage for this rank's local shard only, and gathering it with
    ``full_tensor()`` gives the single-process values, whatever the mesh and placements.

    Parameters
    ----------
    module, seed, rules, prefix
        As in :func:`init_module`.
    device : str or torch.device
        Where the model ends up. Values are made on the CPU; another device gets them by
        ``module.to(device)`` afterwards.

    Returns
    -------
    Manifest
    """
    module = _check_module(module)
    dev = torch.device(device)
    p = plan(module, normalize_seed(seed), rules, _check_prefix(prefix))
    meta = [s.name for s in p.unset if s.tensor.is_meta]
    if meta:
        raise ValueError(f"{', '.join(meta)}: non-persistent buffers on the meta device whose "
                         "modules have no reset_parameters; weightfill cannot know their "
                         "values: give rules for them")
    _allocate(module)
    _refresh(p, module, prefix)
    _fill(p)
    if dev.type != "cpu":
        module.to(dev)
    return p.manifest()


def _allocate(module: nn.Module) -> None:
    """Replaces every meta parameter and buffer with new CPU storage (one per distinct
    tensor, so tied tensors stay tied)."""
    new: dict[int, torch.Tensor] = {}
    for m in module.modules():
        for local, t in list(m._parameters.items()):
            if t is None or not t.is_meta:
                continue
            if id(t) not in new:
                new[id(t)] = nn.Parameter(_empty_like(t), requires_grad=t.requires_grad)
            m._parameters[local] = new[id(t)]  # type: ignore[assignment]
        for local, b in list(m._buffers.items()):
            if b is None or not b.is_meta:
                continue
            if id(b) not in new:
                new[id(b)] = _empty_like(b)
            m._buffers[local] = new[id(b)]
        if isinstance(m, nn.RNNBase):
            m._init_flat_weights()  # it caches references to its parameters


def _empty_like(t: torch.Tensor) -> torch.Tensor:
    """New CPU storage for meta tensor ``t``: a DTensor gets its local shard's shape only."""
    if _dtensor.is_dtensor(t):
        return _dtensor.allocate_like(t)
    return allocate(tuple(t.shape), t.dtype)


def _refresh(p: Plan, module: nn.Module, prefix: str) -> None:
    """Points the plan's slots at the tensors that now hold them."""
    current = _slots(module, prefix)
    for s in p.slots + [s for _, ss in p.fallback for s in ss]:
        s.tensor = current[s.name].tensor
