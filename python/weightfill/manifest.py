"""The manifest: what an initialization did, precisely enough to do it again anywhere.

Every adapter (``weightfill.torch``, ``weightfill.jax``, ...) and :func:`weightfill.init_params`
describe their work as a :class:`Manifest`: for each tensor its qualified name, full shape,
dtype, scheme, the scheme's arguments, seed, stream and stream-spec version. Because every value
is a pure function of those (the counter contract), :meth:`Manifest.tensor` regenerates any
tensor, or any region of it, bit for bit, without the framework or the model. Checkpoint
writers and verifiers consume it. The JSON format is documented in docs/manifest.md.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Optional, Union

import numpy as np

from . import _engine
from ._args import BFLOAT16, _as_index, normalize_region, normalize_shape
from .streams import normalize_seed, normalize_stream

__all__ = ["Manifest", "TensorEntry", "FORMAT", "VERSION", "SPEC_VERSION"]

FORMAT = "weightfill-manifest"
VERSION = 1
#: The stream-spec version (docs/stream-spec.md) this build implements.
SPEC_VERSION = 1

_FLOAT_DTYPES = {
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
    "float16": np.dtype(np.float16),
    "bfloat16": BFLOAT16,
}
# Integer buffers (BatchNorm's num_batches_tracked) hold constants only.
_INT_DTYPES = {"int64": np.dtype(np.int64), "int32": np.dtype(np.int32)}
DTYPES = {**_FLOAT_DTYPES, **_INT_DTYPES}
_CONSTANT_SCHEMES = ("zeros", "ones", "constant")
_RESERVED = ("seed", "stream", "out", "region", "dtype")

RegionLike = Any


def dtype_name(dtype: Any) -> str:
    """The manifest's name of a NumPy dtype ("float32", "bfloat16", ...)."""
    dt = np.dtype(dtype)
    for name, d in DTYPES.items():
        if d == dt:
            return name
    raise TypeError(f"dtype: {dt} is not supported (use one of {', '.join(DTYPES)})")


def _json_value(value: Any, where: str) -> Any:
    """``value`` as the JSON round trip gives it back (tuples become lists), or a TypeError."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as err:
        raise TypeError(f"{where} must be JSON-serialisable: {err}") from None


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a manifest: everything its values depend on.

    Attributes
    ----------
    name : str
        Qualified name (``"decoder.layers.0.attn.q_proj.weight"``).
    shape : tuple of int
        The full logical shape (a shard is a region of it).
    dtype : str
        ``"float32"``, ``"float64"``, ``"float16"``, ``"bfloat16"``, or ``"int64"``/``"int32"``
        for constant buffers.
    scheme : str
        A name from :data:`weightfill.params.SCHEMES`.
    params : dict
        The scheme's keyword arguments (JSON values): ``scheme(shape, **params, seed=seed,
        stream=stream, dtype=dtype)`` regenerates the tensor.
    seed : int
    stream : str or int
        Usually the qualified name.
    resolved : dict
        Informational: what the arguments resolved to (fans, gain, bound or std, ...).
    source : str
        What chose the law: ``"torch:Linear"``, ``"rule:*.weight"``, ``"spec"``, ...
    spec_version : int
        The stream-spec version the values follow.
    zero_rows : tuple of int
        Rows (indices along axis 0) set to zero after the draw, as torch's ``Embedding`` does
        for ``padding_idx``.
    aliases : tuple of str
        Other names bound to the same tensor (tied weights), filled once.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    scheme: str
    params: dict[str, Any]
    seed: int
    stream: Union[str, int]
    resolved: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    spec_version: int = SPEC_VERSION
    zero_rows: tuple[int, ...] = ()
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from .params import SCHEMES, check_param_names

        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty str, got {self.name!r}")
        where = f"tensor {self.name!r}"
        object.__setattr__(self, "shape", normalize_shape(tuple(self.shape)))
        if not isinstance(self.dtype, str) or self.dtype not in DTYPES:
            raise ValueError(f"{where}: dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if not isinstance(self.scheme, str) or self.scheme not in SCHEMES:
            raise ValueError(f"{where}: unknown scheme {self.scheme!r}")
        if self.dtype in _INT_DTYPES and self.scheme not in _CONSTANT_SCHEMES:
            raise ValueError(f"{where}: an {self.dtype} tensor can only be zeros, ones or "
                             f"constant, not {self.scheme!r}")
        if not isinstance(self.params, Mapping):
            raise TypeError(f"{where}: params must be a mapping")
        bad = [k for k in _RESERVED if k in self.params]
        if bad:
            raise ValueError(f"{where}: params may not set {', '.join(bad)} (they are fields)")
        check_param_names(self.scheme, self.params, where)
        object.__setattr__(self, "params", _json_value(dict(self.params), f"{where}: params"))
        if not isinstance(self.resolved, Mapping):
            raise TypeError(f"{where}: resolved must be a mapping")
        object.__setattr__(self, "resolved",
                           _json_value(dict(self.resolved), f"{where}: resolved"))
        object.__setattr__(self, "seed", normalize_seed(self.seed) if self.seed is not None
                           else _none_seed(where))
        normalize_stream(self.stream)  # checks the type and range
        if not isinstance(self.spec_version, int) or isinstance(self.spec_version, bool):
            raise TypeError(f"{where}: spec_version must be an int")
        if self.spec_version != SPEC_VERSION:
            raise ValueError(f"{where}: stream-spec version {self.spec_version} is not "
                             f"supported by this build (it implements version {SPEC_VERSION})")
        rows = tuple(_as_index(r, f"{where}: zero_rows") for r in self.zero_rows)
        if rows and (not self.shape or any(not 0 <= r < self.shape[0] for r in rows)):
            raise ValueError(f"{where}: zero_rows {rows} must lie within axis 0 of "
                             f"shape {self.shape}")
        object.__setattr__(self, "zero_rows", rows)
        object.__setattr__(self, "aliases", tuple(str(a) for a in self.aliases))

    @property
    def numpy_dtype(self) -> np.dtype:
        return DTYPES[self.dtype]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.numpy_dtype.itemsize

    @property
    def random(self) -> bool:
        """Whether the scheme draws random numbers (takes a seed and stream)."""
        from .params import DETERMINISTIC

        return self.scheme not in DETERMINISTIC

    def tensor(self, region: Optional[RegionLike] = None, *,
               out: Optional[Any] = None) -> np.ndarray:
        """The tensor, or its ``region`` (a tuple of step-1 slices of the full shape), bit for
        bit as first made; into ``out`` when given (a writable C-contiguous array of the
        region's shape and dtype)."""
        result = self._draw(region, out)
        if self.zero_rows:
            self._zero_rows(result, region)
        return result

    def _draw(self, region: Optional[RegionLike], out: Optional[Any]) -> np.ndarray:
        """The scheme's values without ``zero_rows`` (a fill that a fill plan may defer)."""
        from .params import scheme_function

        if self.dtype in _INT_DTYPES:
            return self._integer_constant(region, out)
        fn = scheme_function(self.scheme)
        kwargs = dict(self.params, dtype=self.numpy_dtype, out=out, region=region)
        if self.random:
            kwargs.update(seed=self.seed, stream=self.stream)
        try:
            return fn(self.shape, **kwargs)  # type: ignore[no-any-return]
        except (TypeError, ValueError) as err:  # name the entry and its params: a manifest
            # read from a file may hold values its scheme refuses
            cls = TypeError if isinstance(err, TypeError) else ValueError
            raise cls(f"tensor {self.name!r} ({self.scheme} with params "
                      f"{self.params}): {err}") from err

    def _zero_rows(self, result: Any, region: Optional[RegionLike]) -> None:
        _engine.flush()  # inside _engine.deferred() the draw may still be pending
        start, length = normalize_region(region, self.shape)
        for r in self.zero_rows:
            if start[0] <= r < start[0] + length[0]:
                result[r - start[0]] = 0

    def _integer_constant(self, region: Optional[RegionLike], out: Optional[Any]) -> np.ndarray:
        _, length = normalize_region(region, self.shape)
        value = {"zeros": 0, "ones": 1}.get(self.scheme, self.params.get("value", 0))
        if out is None:
            return np.full(length, value, self.numpy_dtype)
        out[...] = value
        return out  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "scheme": self.scheme,
            "params": self.params,
            "seed": self.seed,
            "stream": self.stream,
            "spec_version": self.spec_version,
        }
        if self.resolved:
            d["resolved"] = self.resolved
        if self.source:
            d["source"] = self.source
        if self.zero_rows:
            d["zero_rows"] = list(self.zero_rows)
        if self.aliases:
            d["aliases"] = list(self.aliases)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TensorEntry":
        if not isinstance(d, Mapping):
            raise TypeError(f"a tensor entry must be an object, not {type(d).__name__}")
        name = d.get("name", "?")
        missing = [k for k in ("name", "shape", "dtype", "scheme", "params", "seed", "stream",
                               "spec_version") if k not in d]
        if missing:
            raise ValueError(f"tensor {name!r}: missing field(s) {', '.join(missing)}")
        known = {"name", "shape", "dtype", "scheme", "params", "seed", "stream", "spec_version",
                 "resolved", "source", "zero_rows", "aliases"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"tensor {name!r}: unknown field(s) {', '.join(unknown)}")
        for key in ("shape", "zero_rows", "aliases"):
            if not isinstance(d.get(key, []), list):
                raise TypeError(f"tensor {name!r}: {key} must be a list")
        return cls(name=d["name"], shape=tuple(d["shape"]), dtype=d["dtype"],
                   scheme=d["scheme"], params=d["params"], seed=d["seed"], stream=d["stream"],
                   resolved=d.get("resolved", {}), source=d.get("source", ""),
                   spec_version=d["spec_version"], zero_rows=tuple(d.get("zero_rows", ())),
                   aliases=tuple(d.get("aliases", ())))


def _none_seed(where: str) -> int:
    raise TypeError(f"{where}: a manifest entry needs an int seed (None is not reproducible)")


class Manifest(Mapping[str, TensorEntry]):
    """An ordered collection of :class:`TensorEntry`, by name.

    >>> m = Manifest.from_params({"fc.weight": ((4, 3), "kaiming_uniform")}, seed=0)
    >>> m.tensor("fc.weight").shape
    (4, 3)

    Reproducibility
    ---------------
    ``manifest.tensor(name, region)`` equals ``manifest.tensor(name)[region]`` and the tensor
    the adapter wrote, bit for bit (orthogonal schemes: with the same BLAS; see
    :func:`weightfill.orthogonal`).
    """

    FORMAT = FORMAT
    VERSION = VERSION

    def __init__(self, entries: Iterable[TensorEntry] = (), *,
                 unrecorded: Iterable[str] = ()) -> None:
        self._entries: dict[str, TensorEntry] = {}
        self._alias: dict[str, str] = {}
        for e in entries:
            self.add(e)
        #: Names of tensors the adapter filled (reproducibly) by code it could not describe,
        #: e.g. a module's own reset_parameters drawing from torch's generator directly: they
        #: have no entry and cannot be regenerated from the manifest.
        self.unrecorded: tuple[str, ...] = tuple(unrecorded)
        for n in self.unrecorded:
            if not isinstance(n, str):
                raise TypeError(f"unrecorded names must be str, not {type(n).__name__}")
            if n in self:
                raise ValueError(f"{n!r} is both recorded and unrecorded")

    # Mapping protocol -----------------------------------------------------------------------
    def __getitem__(self, name: str) -> TensorEntry:
        if name in self._entries:
            return self._entries[name]
        if name in self._alias:
            return self._entries[self._alias[name]]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._alias

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Manifest):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        more = f", {len(self.unrecorded)} unrecorded" if self.unrecorded else ""
        return f"Manifest({len(self)} tensors, {self.nbytes} bytes{more})"

    # Building -------------------------------------------------------------------------------
    def add(self, entry: TensorEntry) -> None:
        """Appends ``entry``; a name (or alias) already present is a ValueError."""
        if not isinstance(entry, TensorEntry):
            raise TypeError(f"entry must be a TensorEntry, not {type(entry).__name__}")
        for n in (entry.name, *entry.aliases):
            if n in self:
                raise ValueError(f"duplicate tensor name {n!r} in the manifest")
        self._entries[entry.name] = entry
        for a in entry.aliases:
            self._alias[a] = entry.name

    @property
    def entries(self) -> list[TensorEntry]:
        return list(self._entries.values())

    @property
    def nbytes(self) -> int:
        """Bytes of all tensors (each tied tensor once)."""
        return sum(e.nbytes for e in self._entries.values())

    def tensor(self, name: str, region: Optional[RegionLike] = None, *,
               out: Optional[Any] = None) -> np.ndarray:
        """Regenerates tensor ``name`` (or an alias), or its ``region``; see
        :meth:`TensorEntry.tensor`."""
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        try:
            entry = self[name]
        except KeyError:
            raise KeyError(f"no tensor {name!r} in the manifest") from None
        return entry.tensor(region, out=out)

    # Serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"format": FORMAT, "version": VERSION,
                             "tensors": [e.to_dict() for e in self._entries.values()]}
        if self.unrecorded:
            d["unrecorded"] = list(self.unrecorded)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Manifest":
        if not isinstance(d, Mapping):
            raise TypeError(f"a manifest must be a JSON object, not {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise ValueError(f"not a weightfill manifest (format {d.get('format')!r}, "
                             f"expected {FORMAT!r})")
        if d.get("version") != VERSION:
            raise ValueError(f"manifest format version {d.get('version')!r} is not supported "
                             f"(this build reads version {VERSION})")
        tensors = d.get("tensors")
        if not isinstance(tensors, list):
            raise ValueError("manifest: 'tensors' must be a list")
        unrecorded = d.get("unrecorded", [])
        if not isinstance(unrecorded, list) or not all(isinstance(n, str) for n in unrecorded):
            raise ValueError("manifest: 'unrecorded' must be a list of names")
        return cls((TensorEntry.from_dict(t) for t in tensors), unrecorded=unrecorded)

    def to_json(self, indent: Optional[int] = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: Union[str, bytes]) -> "Manifest":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"manifest is not valid JSON: {err}") from None
        return cls.from_dict(d)

    def save(self, path: Union[str, os.PathLike[str]]) -> None:
        """Writes the JSON form to ``path`` (through a temporary file and a rename)."""
        tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(self.to_json(indent=1))
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: Union[str, os.PathLike[str]]) -> "Manifest":
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())

    @classmethod
    def from_params(cls, spec: Mapping[str, Any], *, seed: Optional[int],
                    dtype: Any = np.float32) -> "Manifest":
        """The manifest of :func:`weightfill.init_params` for ``spec``, without allocating a
        tensor (shapes, schemes and arguments are checked by generating an empty region of
        each)."""
        from .params import parse_spec

        return cls(parse_spec(spec, seed=seed, dtype=dtype))
