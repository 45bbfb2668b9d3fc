"""JAX and Flax adapter: initializers with JAX's protocol, sharded arrays without a full-size draw.

- :data:`initializers`: every ``jax.nn.initializers`` factory (``he_normal()``,
  ``variance_scaling(...)``, ``orthogonal()``, ...) with JAX's signatures and defaults,
  returning ``init(key, shape, dtype=None, out_sharding=None) -> jax.Array``. The key decides
  ``(seed, stream)`` by :func:`key_seed_stream`; the values equal the weightfill NumPy scheme's
  at that ``(seed, stream)``. They work eagerly, inside ``jax.jit`` (a host callback),
  under ``jax.eval_shape``, under ``jax.vmap`` (one key per batch element) and as
  ``kernel_init=``/``bias_init=`` of Flax linen and nnx modules.
- :func:`make_array`: a sharded ``jax.Array`` built with ``jax.make_array_from_callback``,
  each addressable shard filled by the engine with ``region=``: no device or host ever holds
  more than its shards, and the values equal the unsharded NumPy call bit for bit whatever
  the mesh.
- :func:`materialize`: a whole Flax nnx model, abstract (shapes and shardings only), filled
  parameter by parameter with stream = the parameter's dotted path; returns the model and
  its :class:`~weightfill.Manifest`.

jax (and, for :func:`materialize`, flax) are imported by this module, never by ``import
weightfill``. docs/jax.md has the details and measurements.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from typing import Any, Callable, Mapping, Optional, Union

import jax
import numpy as np

from . import _jax_init as initializers
from ._jax_init import Initializer, _Recorder, _dtype, _shape, key_seed_stream, words_seed_stream
from .manifest import Manifest, TensorEntry, dtype_name
from .params import DETERMINISTIC, RULE_RESERVED, SCHEMES, parse_rule, scheme_function
from .streams import normalize_seed, normalize_stream

__all__ = [
    "initializers",
    "Initializer",
    "key_seed_stream",
    "words_seed_stream",
    "make_array",
    "materialize",
]

Stream = Union[int, str]
_MISSING: Any = object()
#: Schemes whose values are a property of the whole matrix: computed once per call, then
#: sliced (each process holds the full matrix once; see weightfill.orthogonal).
_WHOLE = frozenset({"orthogonal", "delta_orthogonal"})


# ----------------------------------------------------------------------------------------------
# make_array


def _region(index: Any, full: tuple[int, ...]) -> tuple[slice, ...]:
    """A shard index from JAX (slices, possibly with None bounds) as step-1 int slices."""
    if index is None:
        return tuple(slice(0, n) for n in full)
    index = tuple(index)
    if len(index) != len(full):
        raise ValueError(f"shard index {index} does not match the {len(full)}-D shape {full}")
    out = []
    for s, n in zip(index, full):
        start, stop, step = s.indices(n)
        if step != 1:
            raise ValueError(f"shard index {index} has a step; only step-1 shards are supported")
        out.append(slice(start, max(start, stop)))
    return tuple(out)


def _filler(scheme: Union[str, Initializer], full: tuple[int, ...], dt: np.dtype,
            seed: Optional[int], stream: int,
            params: dict[str, Any]) -> Callable[[tuple[slice, ...]], np.ndarray]:
    """fill(region) -> that region of the full tensor, arguments checked now."""
    if isinstance(scheme, Initializer):
        init = scheme
        if params:
            raise TypeError(f"make_array: an Initializer carries its own arguments; got extra "
                            f"{', '.join(sorted(params))}")
        init._check(full, dt)
        if init.scheme in _WHOLE or init.column_axis is not None:
            whole: list[np.ndarray] = []

            def sliced(region: tuple[slice, ...]) -> np.ndarray:
                if not whole:
                    whole.append(init.numpy(full, seed=seed, stream=stream, dtype=dt))
                return np.ascontiguousarray(whole[0][region])

            return sliced
        name, params = init.scheme, init.params
    else:
        name = scheme
    fn = scheme_function(name)
    kw: dict[str, Any] = dict(params, dtype=dt)
    if name not in DETERMINISTIC:
        kw.update(seed=seed, stream=stream)
    if name in _WHOLE:
        whole = []

        def sliced(region: tuple[slice, ...]) -> np.ndarray:
            if not whole:
                whole.append(fn(full, **kw))
            return np.ascontiguousarray(whole[0][region])

        # Check the arguments now (a tiny call fails the same way as the full one).
        return sliced
    empty = (slice(0, 0),) + tuple(slice(0, n) for n in full[1:]) if full else ()
    try:
        fn(full, region=empty, **kw)
    except (TypeError, ValueError) as err:
        raise type(err)(f"make_array({name!r}): {err}") from None
    return lambda region: fn(full, region=region, **kw)  # type: ignore[no-any-return]


def make_array(
    scheme: Union[str, Initializer],
    shape: Any,
    sharding: jax.sharding.Sharding,
    *,
    seed: Optional[int] = _MISSING,
    stream: Stream = 0,
    dtype: Any = None,
    **params: Any,
) -> jax.Array:
    """A sharded ``jax.Array`` of ``scheme(shape, **params, seed=seed, stream=stream,
    dtype=dtype)``, each addressable shard filled by the engine on its own.

    Built with ``jax.make_array_from_callback``: the callback receives each addressable
    device's index (a tuple of slices of the full shape) and fills exactly that region, so no
    full-size array is created (the whole-matrix schemes ``orthogonal`` and
    ``delta_orthogonal`` excepted: their matrix is computed once per call and sliced). A
    region that several local devices hold (replicated mesh axes) is filled once.

    Parameters
    ----------
    scheme : str or Initializer
        A name in :data:`weightfill.params.SCHEMES` (``"normal"``, ``"he_normal"``,
        ``"kaiming_uniform"``, ``"zeros"``, ...), or an initializer of
        :data:`initializers` (then ``params`` must be empty).
    shape : tuple of int
        The full (global) shape.
    sharding : jax.sharding.Sharding
        ``NamedSharding`` (any ``PartitionSpec``, including uneven splits and replicated
        axes), ``SingleDeviceSharding``, or any sharding JAX can index.
    seed : int in [0, 2**64), or None
        Required for random schemes; ``None`` draws one seed now for every shard.
    stream : int in [0, 2**64), or str
    dtype : float32 (default), float64 (needs ``jax_enable_x64``), float16 or bfloat16
    **params
        The scheme's keyword arguments (``std=0.02``, ``mode="fan_out"``, ``layout="jax"``).

    Returns
    -------
    jax.Array

    Reproducibility
    ---------------
    ``np.asarray(make_array(...))`` equals ``weightfill.<scheme>(shape, ..., seed=seed,
    stream=stream)`` bit for bit for every sharding, device count and process count.
    """
    if isinstance(scheme, str):
        if scheme not in SCHEMES:
            raise ValueError(f"scheme: unknown scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
        bad = [k for k in RULE_RESERVED if k in params]
        if bad:
            raise TypeError(f"make_array: {', '.join(bad)} cannot be a scheme parameter")
    elif not isinstance(scheme, Initializer):
        raise TypeError(f"scheme must be a scheme name or a weightfill.jax initializer, not "
                        f"{type(scheme).__name__}")
    full = _shape(shape)
    dt = _dtype(np.float32 if dtype is None and isinstance(scheme, str) else
                (dtype if dtype is not None else scheme.dtype  # type: ignore[union-attr]
                 or np.float32))
    if not isinstance(sharding, jax.sharding.Sharding):
        raise TypeError(f"sharding must be a jax.sharding.Sharding, not "
                        f"{type(sharding).__name__}")
    try:
        index_map = sharding.addressable_devices_indices_map(full)
    except (ValueError, TypeError, IndexError, KeyError) as err:
        raise ValueError(f"sharding {sharding} does not fit shape {full}: {err}") from None
    name = scheme if isinstance(scheme, str) else scheme.scheme
    random = name not in DETERMINISTIC
    if random and seed is _MISSING:
        raise TypeError(f"make_array({name!r}) needs seed= (an int, or None for fresh entropy)")
    s = normalize_seed(None if seed is _MISSING else seed) if random else None
    t = normalize_stream(stream)
    fill = _filler(scheme, full, dt, s, t, params)

    # Each distinct region is filled once and handed to every local device that holds it.
    keys = [tuple((r.start, r.stop) for r in _region(i, full)) for i in index_map.values()]
    pending = Counter(keys)
    cache: dict[Any, np.ndarray] = {}

    def callback(index: Any) -> np.ndarray:
        region = _region(index, full)
        k = tuple((r.start, r.stop) for r in region)
        arr = cache[k] if k in cache else fill(region)
        pending[k] -= 1
        if pending[k] > 0:
            cache[k] = arr
        else:
            cache.pop(k, None)
        return arr

    return jax.make_array_from_callback(full, sharding, callback, dtype=dt)


# ----------------------------------------------------------------------------------------------
# materialize (Flax nnx)

Rules = Mapping[str, Any]


def _rule(value: Any, where: str) -> tuple[str, dict[str, Any], Optional[Initializer]]:
    """A rule's value as (scheme, params, initializer or None). Flax kernels are
    channels-last, (*kernel, in, out): every scheme reads them with ``layout="jax"``."""
    if isinstance(value, Initializer):
        return value.scheme, value.manifest_params, value
    scheme, params = parse_rule(value, where, layout="jax", kinds="a scheme name, "
                                "(scheme, {params}) or a weightfill.jax initializer")
    return scheme, params, None


def _check_rules(rules: Optional[Rules]) -> list[tuple[str, tuple[str, dict[str, Any],
                                                                  Optional[Initializer]]]]:
    if rules is None:
        return []
    if not isinstance(rules, Mapping):
        raise TypeError(f"rules must be a mapping of glob pattern to scheme, not "
                        f"{type(rules).__name__}")
    out = []
    for key, value in rules.items():
        if not isinstance(key, str):
            raise TypeError(f"rules: a key must be a glob pattern (str), not {key!r}")
        out.append((key, _rule(value, repr(key))))
    return out


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(getattr(p, "key", getattr(p, "idx", p))) for p in path)


def _trace(ctor: Callable[[], Any]) -> tuple[Any, dict[str, Initializer]]:
    """The abstract model ``ctor()`` builds, and the weightfill initializer behind each of its
    variables (found by the identity of the initializer's traced output)."""
    from flax import nnx

    found: dict[str, Initializer] = {}

    def build() -> Any:
        previous, _Recorder.active = _Recorder.active, []
        try:
            # Without eager sharding the variables hold the initializers' own outputs (the
            # sharding stays in their metadata), so the outputs can be matched by identity.
            with nnx.use_eager_sharding(False):
                model = ctor()
            recorded = _Recorder.active
        finally:
            _Recorder.active = previous
        for path, var in nnx.iter_graph(model):
            if isinstance(var, nnx.Variable):
                value = var.get_value()
                for out, init in recorded:
                    if value is out:
                        found[_dotted(path)] = init
                        break
        return model

    return nnx.eval_shape(build), found


def _spec_and_mesh(var: Any, value: Any) -> tuple[Optional[tuple[Any, ...]], Any]:
    sh = getattr(value, "sharding", None)
    if isinstance(sh, jax.sharding.NamedSharding):
        return tuple(sh.spec), sh.mesh
    if sh is not None and not isinstance(sh, jax.sharding.NamedSharding):
        return None, sh  # a concrete array's own sharding (single device, ...)
    meta = var.get_metadata() if hasattr(var, "get_metadata") else {}
    for k in ("out_sharding", "sharding_names", "sharding"):
        if meta.get(k) is not None:
            return tuple(meta[k]), meta.get("mesh")
    return (), None


def _leaf_sharding(name: str, var: Any, value: Any, mesh: Any) -> jax.sharding.Sharding:
    spec, own = _spec_and_mesh(var, value)
    if spec is None:
        return own  # type: ignore[no-any-return]
    m = mesh
    if m is None and isinstance(own, jax.sharding.Mesh):
        m = own
    if m is None:
        current = jax.sharding.get_mesh()
        m = None if current.empty else current
    if m is None:
        if any(a is not None for a in spec):
            raise ValueError(f"{name}: sharded as {spec} but no mesh is given; pass mesh= or "
                             "call inside jax.set_mesh(mesh)")
        return jax.sharding.SingleDeviceSharding(jax.devices()[0])
    try:
        return jax.sharding.NamedSharding(m, jax.sharding.PartitionSpec(*spec))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name}: sharding {spec} does not fit mesh {m}: {err}") from None


def materialize(
    model: Any,
    *,
    seed: Optional[int],
    rules: Optional[Rules] = None,
    mesh: Optional[jax.sharding.Mesh] = None,
) -> tuple[Any, Manifest]:
    """Fills a Flax nnx model's variables by path, each shard by itself, and returns the
    model with real arrays and its :class:`~weightfill.Manifest`.

    Parameters
    ----------
    model : callable, nnx.Module or nnx.State
        - A constructor taking no arguments (``lambda: Model(rngs=nnx.Rngs(0))``): it is traced
          with ``nnx.eval_shape`` (nothing is allocated), and every variable that a
          :data:`initializers` initializer created (``kernel_init=initializers.he_normal()``)
          takes that initializer's scheme. Other variables need ``rules``.
        - An abstract model (``nnx.eval_shape(lambda: Model(rngs=nnx.Rngs(0)))``) or its
          ``nnx.State``, or a concrete one to re-initialize: Flax modules do not keep their
          initializers, so every variable needs a rule.
    seed : int in [0, 2**64), or None
        One seed for the whole model (None: fresh, recorded in the manifest).
    rules : mapping of glob pattern to scheme, optional
        ``{"*.kernel": "he_normal", "*.bias": "zeros", "*embedding": ("normal", {"std":
        0.02}), "head.kernel": initializers.lecun_normal()}``, matched in order against the
        dotted path (``fnmatch`` case-sensitive); the first match wins. Schemes that read fans
        default to ``layout="jax"`` (channels-last kernels). An initializer found in the
        constructor takes precedence over the rules.
    mesh : jax.sharding.Mesh, optional
        The mesh for variables annotated with partition names (``nnx.with_partitioning``,
        ``out_sharding``/``sharding_names`` metadata, or an abstract ``NamedSharding``);
        default: the mesh set with ``jax.set_mesh``. Variables without names are replicated on
        it, or placed on the first device when there is no mesh.

    Returns
    -------
    (model, Manifest)
        The nnx Module (or State, for a State) with ``jax.Array`` values, and a manifest whose
        entry ``path`` regenerates each variable (``manifest.tensor("layers.0.kernel")``).

    Reproducibility
    ---------------
    Variable ``path`` equals ``weightfill.<scheme>(shape, **params, seed=seed, stream=path)``
    bit for bit: it does not depend on the keys the model's ``Rngs`` would give, on the mesh,
    on the number of devices, or on other variables.
    """
    from flax import nnx

    checked = _check_rules(rules)
    s = normalize_seed(seed)
    found: dict[str, Initializer] = {}
    if isinstance(model, nnx.State):
        graphdef, state = None, model
    elif isinstance(model, nnx.Module):
        graphdef, state = nnx.split(model)
    elif callable(model):
        abstract, found = _trace(model)
        graphdef, state = nnx.split(abstract)
    else:
        raise TypeError(f"model must be an nnx.Module, an nnx.State or a constructor, not "
                        f"{type(model).__name__}")
    if mesh is not None and not isinstance(mesh, jax.sharding.Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh, not {type(mesh).__name__}")

    flat = list(nnx.to_flat_state(state))
    plan = []
    unmatched = []
    for path, var in flat:
        name = _dotted(path)
        if isinstance(var, nnx.RngState):
            raise ValueError(f"{name}: the model holds RNG state ({type(var).__name__}); "
                             "materialize fills weights only. Keep nnx.Rngs out of the model "
                             "(pass rngs= at call time) or split the model's RNG state off")
        value = var.get_value()
        if name in found:
            init = found[name]
            try:
                law = (init.scheme, init.manifest_params, init)
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
            source = f"jax:{init.name}"
        else:
            hit = next(((k, v) for k, v in checked if fnmatch.fnmatchcase(name, k)), None)
            if hit is None:
                unmatched.append(name)
                continue
            law, source = hit[1], f"rule:{hit[0]}"
        plan.append((path, var, name, value, law, source))
    if unmatched:
        raise ValueError(f"no initializer for {', '.join(unmatched)}: give rules (glob on the "
                         "dotted path -> scheme) or build them with weightfill.jax "
                         "initializers passed to a constructor")

    entries, filled = [], []
    for path, var, name, value, (scheme, params, init), source in plan:
        shape = tuple(int(d) for d in value.shape)
        try:
            dt = np.dtype(value.dtype)
            dname = dtype_name(dt)
        except TypeError as err:
            raise TypeError(f"{name}: {err}") from None
        sharding = _leaf_sharding(name, var, value, mesh)
        arr = make_array(init if init is not None else scheme, shape, sharding, seed=s,
                         stream=name, dtype=dt, **({} if init is not None else params))
        entries.append(TensorEntry(name=name, shape=shape, dtype=dname, scheme=scheme,
                                   params=params, seed=s, stream=name, source=source,
                                   resolved={"sharding": str(getattr(sharding, "spec", ""))}))
        filled.append((path, var.replace(arr)))
    new_state = nnx.from_flat_state(filled)
    manifest = Manifest(entries)
    if graphdef is None:
        return new_state, manifest
    return nnx.merge(graphdef, new_state), manifest

