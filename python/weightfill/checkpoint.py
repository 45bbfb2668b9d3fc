"""Initial checkpoints without the model in memory: safetensors files written from a manifest.

Every value of a :class:`~weightfill.Manifest` is a pure function of its entries, and every shape
and dtype is known up front, so the whole file layout (header, offsets, shards) is fixed before a
single value is drawn. :func:`save` writes the header first, then generates each tensor region by
region (``TensorEntry.tensor(region, out=)``, on the library's threads) into a few reused
buffers that a writer thread copies to the file with positioned writes: memory stays bounded by
those buffers whatever the model's size. :func:`verify` regenerates and compares, the same way.

The layout choices (dtype order, alignment, the ``weightfill.manifest`` metadata key, sharding,
temporary names) are in docs/checkpoints.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import re
import secrets
import struct
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from . import _engine
from .manifest import Manifest, TensorEntry

__all__ = ["save", "verify", "VerifyReport", "TensorCheck", "METADATA_KEY", "INDEX_SUFFIX",
           "parse_size", "add_arguments", "run", "add_verify_arguments", "run_verify"]

#: The ``__metadata__`` key under which the manifest's JSON is stored (safetensors metadata maps
#: str to str, so the manifest is one JSON string).
METADATA_KEY = "weightfill.manifest"
#: Name of a sharded checkpoint's index: ``<OUT>.index.json``, as Hugging Face names it.
INDEX_SUFFIX = ".index.json"

# safetensors' dtype codes (the format's README and its Rust ``Dtype`` enum).
_DTYPE_CODE = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16",
               "int64": "I64", "int32": "I32"}
_CODE_DTYPE = {v: k for k, v in _DTYPE_CODE.items()}

# The safetensors reader refuses headers above 100,000,000 bytes (MAX_HEADER_SIZE in its Rust
# source).
_MAX_HEADER = 100_000_000
# Bytes generated per region, and buffers in flight between the generating and writing threads:
# bounds the memory the writer adds to the process (4 x 16 MiB).
_CHUNK = 16 << 20
_BUFFERS = 4
# Schemes whose region is computed from the whole tensor (a QR of the full matrix): generated
# once per tensor, then written region by region.
_WHOLE = frozenset({"orthogonal", "delta_orthogonal"})
_MiB = 1 << 20

PathLike = Union[str, "os.PathLike[str]"]


# --------------------------------------------------------------------------------------------
# Sizes and layout

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)


def parse_size(value: Union[int, str], name: str = "max_shard_size") -> int:
    """Bytes from an int or a string like ``"5GB"`` (10**9, as Hugging Face counts),
    ``"500MiB"`` (2**20) or ``"1000000"``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a size string, not bool")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        m = _SIZE_RE.match(value)
        if not m:
            raise ValueError(f"{name}: {value!r} is not a size (e.g. 5GB, 500MiB, 1000000)")
        unit = (m.group(2) or "B").upper()
        base = 1024 if "I" in unit else 1000
        power = "BKMGT".index(unit[0]) if unit[0] != "B" else 0
        n = int(float(m.group(1)) * base ** power)
    else:
        raise TypeError(f"{name} must be an int or a size string, not {type(value).__name__}")
    if n <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return n


@dataclass
class _Slot:
    entry: TensorEntry
    begin: int  # offset in the shard's data section
    end: int


@dataclass
class _Shard:
    path: str
    slots: list[_Slot] = field(default_factory=list)
    header: bytes = b""

    @property
    def data_bytes(self) -> int:
        return self.slots[-1].end if self.slots else 0


def _check_manifest(manifest: Any) -> Manifest:
    if not isinstance(manifest, Manifest):
        raise TypeError(f"manifest must be a weightfill.Manifest, not {type(manifest).__name__}")
    if manifest.unrecorded:
        shown = ", ".join(manifest.unrecorded[:5]) + (" ..." if len(manifest.unrecorded) > 5
                                                      else "")
        raise ValueError(f"manifest: {len(manifest.unrecorded)} tensor(s) were filled by code the "
                         f"adapter could not describe and cannot be regenerated ({shown}); give "
                         f"them a rule or drop them before writing a checkpoint")
    for e in manifest.entries:
        if e.dtype not in _DTYPE_CODE:
            raise ValueError(f"tensor {e.name!r}: dtype {e.dtype!r} has no safetensors code")
    return manifest


def _ordered(manifest: Manifest) -> list[TensorEntry]:
    # Widest dtype first, manifest order within a width: with the data section 8-byte aligned,
    # every tensor then starts at a multiple of its item size (safetensors' own writer sorts by
    # alignment the same way), so mmap-based loaders can view the data in place.
    entries = manifest.entries
    return sorted(entries, key=lambda e: -e.numpy_dtype.itemsize)


def _header(slots: list[_Slot], manifest_json: str) -> bytes:
    head: dict[str, Any] = {"__metadata__": {"format": "pt", METADATA_KEY: manifest_json}}
    for s in slots:
        head[s.entry.name] = {"dtype": _DTYPE_CODE[s.entry.dtype], "shape": list(s.entry.shape),
                              "data_offsets": [s.begin, s.end]}
    text = json.dumps(head, separators=(",", ":")).encode("utf-8")
    # Padded with spaces so the data section starts 8-byte aligned (8 + len is a multiple of 8),
    # as safetensors' serializer does; JSON ignores trailing whitespace.
    text += b" " * (-len(text) % 8)
    if len(text) > _MAX_HEADER:
        raise ValueError(f"the safetensors header would be {len(text)} bytes, above the "
                         f"format's limit of {_MAX_HEADER}")
    return struct.pack("<Q", len(text)) + text


def _layout(manifest: Manifest, path: str, max_shard_size: int) -> tuple[list[_Shard], str]:
    """The shards (paths, tensors, offsets, headers) and the index path ("" if one file)."""
    groups: list[list[TensorEntry]] = [[]]
    size = 0
    for e in _ordered(manifest):
        # A new shard when this tensor would overflow the current one; a tensor larger than the
        # limit gets a shard of its own (as huggingface_hub's splitter does).
        if groups[-1] and size + e.nbytes > max_shard_size:
            groups.append([])
            size = 0
        groups[-1].append(e)
        size += e.nbytes
    manifest_json = manifest.to_json()
    n = len(groups)
    if n == 1:
        names, index = [path], ""
    else:
        root, ext = os.path.splitext(path)
        names = [f"{root}-{i + 1:05d}-of-{n:05d}{ext}" for i in range(n)]
        index = path + INDEX_SUFFIX
    shards = []
    for name, group in zip(names, groups):
        shard = _Shard(name)
        off = 0
        for e in group:
            shard.slots.append(_Slot(e, off, off + e.nbytes))
            off += e.nbytes
        shard.header = _header(shard.slots, manifest_json)
        shards.append(shard)
    return shards, index


def _out_path(path: Any) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    p = os.fspath(path)
    if not p:
        raise ValueError("path must not be empty")
    if p.endswith(os.sep) or os.path.isdir(p):
        p = os.path.join(p, "model.safetensors")
    parent = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(parent):
        raise ValueError(f"path: directory {parent!r} does not exist")
    return p


# --------------------------------------------------------------------------------------------
# Regions


def _regions(shape: tuple[int, ...], itemsize: int,
             chunk: int) -> Iterator[tuple[tuple[slice, ...], int, int]]:
    """(region, byte offset in the tensor, bytes) of consecutive C-order blocks of at most
    ``chunk`` bytes (at least one element): whole rows of the widest axis that fits."""
    n = math.prod(shape)
    if n == 0:
        return
    if not shape:
        yield (), 0, itemsize
        return
    inner = [math.prod(shape[k + 1:]) for k in range(len(shape))]
    a = next(k for k in range(len(shape)) if inner[k] * itemsize <= chunk)
    step = max(1, chunk // (inner[a] * itemsize))
    tail = tuple(slice(0, s) for s in shape[a + 1:])
    for prefix in np.ndindex(*shape[:a]):
        base = sum(p * inner[k] for k, p in enumerate(prefix))
        head = tuple(slice(p, p + 1) for p in prefix)
        for i in range(0, shape[a], step):
            j = min(i + step, shape[a])
            yield head + (slice(i, j),) + tail, (base + i * inner[a]) * itemsize, \
                (j - i) * inner[a] * itemsize


def _region_shape(region: tuple[slice, ...]) -> tuple[int, ...]:
    return tuple(s.stop - s.start for s in region)


class _Source:
    """Generates one tensor's regions into caller buffers."""

    def __init__(self, entry: TensorEntry) -> None:
        self.entry = entry
        self.whole: Optional[np.ndarray] = None
        if entry.scheme in _WHOLE and entry.nbytes:
            self.whole = np.ascontiguousarray(entry.tensor())

    def fill(self, region: tuple[slice, ...], buf: np.ndarray, nbytes: int) -> np.ndarray:
        out = buf[:nbytes].view(self.entry.numpy_dtype).reshape(_region_shape(region))
        if self.whole is not None:
            out[...] = self.whole[region]
        else:
            self.entry.tensor(region, out=out)
        return out


# --------------------------------------------------------------------------------------------
# Writing


class _Threads:
    """Sets weightfill's thread count for a block and restores it."""

    def __init__(self, threads: Optional[int]) -> None:
        if threads is not None:
            if isinstance(threads, bool) or not isinstance(threads, int):
                raise TypeError(f"threads must be an int or None, not {type(threads).__name__}")
            if not 1 <= threads <= 1024:
                raise ValueError(f"threads must be in [1, 1024], got {threads}")
        self.threads = threads

    def __enter__(self) -> "_Threads":
        self.old = _engine.get_num_threads()
        if self.threads is not None:
            _engine.set_num_threads(self.threads)
        return self

    def __exit__(self, *exc: Any) -> None:
        _engine.set_num_threads(self.old)


class _Progress:
    def __init__(self, enabled: bool, total_bytes: int, total_tensors: int, desc: str) -> None:
        self.bar = None
        self.tensors = 0
        self.total_tensors = total_tensors
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total_bytes, unit="B", unit_scale=True, unit_divisor=1024,
                            desc=desc, file=sys.stderr, dynamic_ncols=True, leave=True)
            self._postfix()

    def _postfix(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"tensors {self.tensors}/{self.total_tensors}",
                                     refresh=False)

    def bytes(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def tensor_done(self) -> None:
        self.tensors += 1
        self._postfix()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Writer:
    """A thread that writes filled buffers at their file offsets while the caller fills the next
    ones; buffers return to a free list, so at most ``_BUFFERS`` exist."""

    def __init__(self, progress: _Progress) -> None:
        self.free: "queue.Queue[np.ndarray]" = queue.Queue()
        for _ in range(_BUFFERS):
            self.free.put(np.empty(_CHUNK, np.uint8))
        self.work: "queue.Queue[Optional[tuple[int, np.ndarray, int, int]]]" = queue.Queue()
        self.error: Optional[BaseException] = None
        self.progress = progress
        self.thread = threading.Thread(target=self._loop, name="weightfill-writer", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            item = self.work.get()
            if item is None:
                return
            fd, buf, offset, nbytes = item
            try:
                if self.error is None:
                    view = memoryview(buf)[:nbytes]
                    done = 0
                    while done < nbytes:
                        done += os.pwrite(fd, view[done:], offset + done)
                    self.progress.bytes(nbytes)
            except BaseException as err:  # reported to the generating thread
                self.error = err
            finally:
                self.free.put(buf)

    def buffer(self) -> np.ndarray:
        self.check()
        return self.free.get()

    def submit(self, fd: int, buf: np.ndarray, offset: int, nbytes: int) -> None:
        self.work.put((fd, buf, offset, nbytes))

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def drain(self, check: bool = True) -> None:
        """Waits until every submitted buffer is written (or failed)."""
        bufs = [self.free.get() for _ in range(_BUFFERS)]
        for b in bufs:
            self.free.put(b)
        if check:
            self.check()

    def stop(self) -> None:
        self.work.put(None)
        self.thread.join(timeout=60)


def _tmp_name(path: str) -> str:
    d, base = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{base}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def _allocate(fd: int, size: int, path: str) -> None:
    # Reserving the blocks up front turns a full disk into one early, clear error.
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as err:
        import errno

        if err.errno in (errno.EOPNOTSUPP, errno.EINVAL, getattr(errno, "ENOTSUP", -1)):
            os.ftruncate(fd, size)
        else:
            raise OSError(err.errno, f"cannot reserve {size} bytes for {path}: "
                                     f"{os.strerror(err.errno)}") from None


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(manifest: Manifest, path: PathLike, *, max_shard_size: Union[int, str] = "5GB",
         threads: Optional[int] = None, progress: bool = True,
         overwrite: bool = False) -> list[str]:
    """Writes the tensors of ``manifest`` as a safetensors checkpoint, in bounded memory.

    Parameters
    ----------
    manifest : Manifest
        Every tensor must be regenerable (``manifest.unrecorded`` empty). Tied tensors
        (aliases) are stored once, under their entry's name.
    path : str or os.PathLike
        The file to write (``model.safetensors`` inside it when it is a directory). Above
        ``max_shard_size`` the tensors go to ``<stem>-00001-of-0000N.safetensors`` ... beside it
        and the index to ``<path>.index.json`` (Hugging Face's layout).
    max_shard_size : int or str, default "5GB"
        Bytes of tensor data per shard (``"5GB"`` = 5 * 10**9, ``"4GiB"`` = 4 * 2**30).
    threads : int, optional
        weightfill's thread count while writing (restored afterwards); default: the current one.
    progress : bool, default True
        A tqdm bar on stderr with bytes and tensors written.
    overwrite : bool, default False
        Replace existing files; otherwise an existing target is a FileExistsError.

    Returns
    -------
    list of str
        The files written: the checkpoint, or the shards followed by the index.

    Notes
    -----
    Each file is written under a temporary name in the same directory, fsync'ed, and renamed
    only when all of them are complete (the index last): an error, a full disk or Ctrl-C leaves
    no file under a final name, and removes the temporary ones. Memory: four 16 MiB buffers,
    plus the whole tensor for orthogonal schemes (their regions come from a QR of the whole).

    Reproducibility
    ---------------
    The bytes depend only on the manifest (and, for orthogonal schemes, the BLAS): not on
    ``threads``, the buffer size or the machine. :func:`verify` checks a file against it.
    """
    manifest = _check_manifest(manifest)
    limit = parse_size(max_shard_size)
    final = _out_path(path)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool, not {type(progress).__name__}")
    shards, index = _layout(manifest, final, limit)
    targets = [s.path for s in shards] + ([index] if index else [])
    if not overwrite:
        existing = [t for t in targets if os.path.lexists(t)]
        if existing:
            raise FileExistsError(f"{existing[0]} exists (pass overwrite=True / --overwrite to "
                                  f"replace it)")
    temps: dict[str, str] = {}
    renamed: list[str] = []
    bar = _Progress(progress, manifest.nbytes, len(manifest), desc=os.path.basename(final))
    writer = _Writer(bar)
    try:
        with _Threads(threads):
            for shard in shards:
                tmp = temps[shard.path] = _tmp_name(shard.path)
                _write_shard(shard, tmp, writer, bar)
        if index:
            doc = {"metadata": {"total_size": manifest.nbytes},
                   "weight_map": {s.entry.name: os.path.basename(sh.path)
                                  for sh in shards for s in sh.slots}}
            tmp = temps[index] = _tmp_name(index)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=2)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
        for t in targets:  # shards first, the index last
            os.replace(temps[t], t)
            renamed.append(t)
            del temps[t]
        _fsync_dir(final)
    except BaseException:
        # Also the files this call already renamed (an interrupt between two renames): a
        # checkpoint is complete under its final names or absent.
        for tmp in [*temps.values(), *(renamed if len(renamed) < len(targets) else [])]:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        raise
    finally:
        writer.stop()
        bar.close()
    return targets


def _write_shard(shard: _Shard, tmp: str, writer: _Writer, bar: _Progress) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        size = len(shard.header) + shard.data_bytes
        _allocate(fd, size, tmp)
        os.pwrite(fd, shard.header, 0)
        start = len(shard.header)
        for slot in shard.slots:
            src = _Source(slot.entry)
            for region, off, nbytes in _regions(slot.entry.shape, slot.entry.numpy_dtype.itemsize,
                                                _CHUNK):
                buf = writer.buffer()
                try:
                    src.fill(region, buf, nbytes)
                except BaseException:
                    writer.free.put(buf)
                    raise
                writer.submit(fd, buf, start + slot.begin + off, nbytes)
            del src
            bar.tensor_done()
        writer.drain()
        os.fsync(fd)
    finally:
        # No write may still be queued for this descriptor when it is closed (its number could
        # be reused by the next open), also when an error or Ctrl-C ends the shard early.
        writer.drain(check=False)
        os.close(fd)


# --------------------------------------------------------------------------------------------
# Reading and verifying


@dataclass
class TensorCheck:
    """The outcome for one tensor.

    ``status`` is ``"ok"``, ``"mismatch"`` (values differ; ``index`` is the first differing
    element's multi-index and ``flat_index`` its C-order position), ``"missing"`` (in the
    manifest, not in the file), ``"extra"`` (in the file, not in the manifest) or ``"layout"``
    (dtype or shape differ; ``detail`` says how). ``checked_bytes`` counts the bytes compared.
    """

    name: str
    status: str
    checked_bytes: int = 0
    index: Optional[tuple[int, ...]] = None
    flat_index: Optional[int] = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class VerifyReport:
    """What :func:`verify` found: one :class:`TensorCheck` per tensor, in file order."""

    tensors: list[TensorCheck]
    sampled: bool = False

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tensors)

    @property
    def first_mismatch(self) -> Optional[TensorCheck]:
        return next((t for t in self.tensors if not t.ok), None)

    @property
    def checked_bytes(self) -> int:
        return sum(t.checked_bytes for t in self.tensors)

    def __bool__(self) -> bool:
        return self.ok


@dataclass
class _FileTensor:
    file: str
    dtype: str
    shape: tuple[int, ...]
    offset: int  # absolute, in the file
    nbytes: int


def _read_header(path: str) -> tuple[dict[str, Any], int]:
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: too short for a safetensors file")
        (n,) = struct.unpack("<Q", raw)
        if n > _MAX_HEADER:
            raise ValueError(f"{path}: header size {n} is not plausible for safetensors")
        text = f.read(n)
        size = os.fstat(f.fileno()).st_size
    try:
        head = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: the safetensors header is not valid JSON: {err}") from None
    if not isinstance(head, dict):
        raise ValueError(f"{path}: the safetensors header is not a JSON object")
    if size < 8 + n:
        raise ValueError(f"{path}: truncated header")
    return head, 8 + n


def _open_checkpoint(path: str) -> tuple[dict[str, _FileTensor], Optional[str]]:
    """Tensors of a file or of an index's shards, and the manifest JSON found in metadata."""
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            try:
                index = json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: not a valid index JSON: {err}") from None
        wm = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(wm, dict):
            raise ValueError(f"{path}: an index needs a 'weight_map' object")
        base = os.path.dirname(os.path.abspath(path))
        files = sorted(set(wm.values()), key=str)
        paths = [os.path.join(base, str(f)) for f in files]
    else:
        wm, paths = None, [path]
    tensors: dict[str, _FileTensor] = {}
    manifest_json = None
    for p in paths:
        head, start = _read_header(p)
        meta = head.pop("__metadata__", None) or {}
        if manifest_json is None and isinstance(meta, dict):
            manifest_json = meta.get(METADATA_KEY)
        for name, info in head.items():
            try:
                b, e = info["data_offsets"]
                ft = _FileTensor(p, _CODE_DTYPE.get(info["dtype"], info["dtype"]),
                                 tuple(info["shape"]), start + int(b), int(e) - int(b))
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"{p}: malformed header entry for {name!r}") from None
            if name in tensors:
                raise ValueError(f"tensor {name!r} appears in two shards")
            tensors[name] = ft
    if wm is not None:
        for name, f in wm.items():
            t = tensors.get(name)
            if t is None or os.path.basename(t.file) != os.path.basename(str(f)):
                raise ValueError(f"index: {name!r} is mapped to {f!r}, which does not hold it")
    return tensors, manifest_json


def _first_difference(got: np.ndarray, want: np.ndarray) -> Optional[int]:
    """The first byte at which the two byte buffers differ, or None."""
    if np.array_equal(got, want):
        return None
    return int(np.flatnonzero(got != want)[0])


def verify(path: PathLike, manifest: Optional[Union[Manifest, PathLike]] = None, *,
           sample: Optional[int] = None, seed: int = 0,
           threads: Optional[int] = None) -> VerifyReport:
    """Checks that a safetensors checkpoint holds exactly the tensors of a manifest.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` file, or a sharded checkpoint's ``.index.json``.
    manifest : Manifest or path, optional
        Default: the manifest stored in the file's metadata (key :data:`METADATA_KEY`).
    sample : int, optional
        Compare only this many regions (of at most 1 MiB), drawn across all tensors with
        probability proportional to their size, reproducibly from ``seed``; default: every
        byte.
    seed : int, default 0
    threads : int, optional
        weightfill's thread count meanwhile.

    Returns
    -------
    VerifyReport
        Truthy when every tensor matches; ``first_mismatch`` names the first failure and, for
        differing values, the first differing element.

    Reproducibility
    ---------------
    The same ``sample`` and ``seed`` compare the same regions on every machine.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"{p} does not exist")
    tensors, stored = _open_checkpoint(p)
    if manifest is None:
        if stored is None:
            raise ValueError(f"{p} has no weightfill manifest in its metadata "
                             f"(key {METADATA_KEY!r}); pass one")
        m = Manifest.from_json(stored)
    elif isinstance(manifest, Manifest):
        m = manifest
    elif isinstance(manifest, (str, os.PathLike)):
        m = Manifest.load(manifest)
    else:
        raise TypeError(f"manifest must be a Manifest, a path or None, not "
                        f"{type(manifest).__name__}")
    if sample is not None:
        if isinstance(sample, bool) or not isinstance(sample, int) or sample < 1:
            raise ValueError(f"sample must be a positive int or None, got {sample!r}")
    checks: dict[str, TensorCheck] = {}
    plan: list[tuple[TensorEntry, _FileTensor]] = []
    for e in m.entries:
        ft = tensors.get(e.name)
        if ft is None:
            checks[e.name] = TensorCheck(e.name, "missing", detail="not in the checkpoint")
        elif ft.dtype != e.dtype or ft.shape != e.shape or ft.nbytes != e.nbytes:
            checks[e.name] = TensorCheck(e.name, "layout", detail=(
                f"file has {ft.dtype} {list(ft.shape)}, manifest {e.dtype} {list(e.shape)}"))
        else:
            checks[e.name] = TensorCheck(e.name, "ok")
            plan.append((e, ft))
    for name in tensors:
        if name not in checks:
            checks[name] = TensorCheck(name, "extra", detail="not in the manifest")
    chunk = _CHUNK if sample is None else _MiB
    todo: dict[str, list[tuple[tuple[slice, ...], int, int]]] = {}
    for e, _ in plan:
        todo[e.name] = list(_regions(e.shape, e.numpy_dtype.itemsize, chunk)) \
            if sample is None or e.scheme in _WHOLE else []
    if sample is not None:
        _pick_samples(plan, todo, sample, seed, chunk)
    fds: dict[str, int] = {}
    got = np.empty(_CHUNK, np.uint8)
    want = np.empty(_CHUNK, np.uint8)
    try:
        with _Threads(threads):
            for e, ft in plan:
                regions = todo[e.name]
                if not regions:
                    continue
                fd = fds.get(ft.file)
                if fd is None:
                    fd = fds[ft.file] = os.open(ft.file, os.O_RDONLY)
                check = checks[e.name]
                src = _Source(e)
                size = e.numpy_dtype.itemsize
                for region, off, nbytes in regions:
                    g = got[:nbytes]
                    n = os.preadv(fd, [memoryview(g)], ft.offset + off)
                    if n != nbytes:
                        check.status, check.detail = "layout", "file is truncated"
                        break
                    src.fill(region, want, nbytes)
                    diff = _first_difference(g, want[:nbytes])
                    check.checked_bytes += nbytes
                    if diff is not None:
                        flat = (off + diff) // size
                        check.status = "mismatch"
                        check.flat_index = flat
                        check.index = tuple(int(i) for i in np.unravel_index(flat, e.shape))
                        break
    finally:
        for fd in fds.values():
            os.close(fd)
    order = [n for n in tensors if n in checks] + [n for n in checks if n not in tensors]
    return VerifyReport([checks[n] for n in order], sampled=sample is not None)


def _pick_samples(plan: list[tuple[TensorEntry, _FileTensor]],
                  todo: dict[str, list[tuple[tuple[slice, ...], int, int]]],
                  sample: int, seed: int, chunk: int) -> None:
    live = [(e, ft) for e, ft in plan if e.nbytes and not todo[e.name]]
    if not live:
        return
    rng = np.random.default_rng(seed)
    weights = np.array([e.nbytes for e, _ in live], dtype=np.float64)
    picks = rng.choice(len(live), size=sample, p=weights / weights.sum())
    for k in sorted(set(int(i) for i in picks)):
        e, _ = live[k]
        regions = list(_regions(e.shape, e.numpy_dtype.itemsize, chunk))
        count = int((picks == k).sum())
        chosen = rng.choice(len(regions), size=min(count, len(regions)), replace=False)
        todo[e.name] = [regions[int(i)] for i in sorted(chosen)]


# --------------------------------------------------------------------------------------------
# Command line: ``weightfill init`` and ``weightfill verify``


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``weightfill init``."""
    p.add_argument("manifest", metavar="MANIFEST.json", help="a weightfill manifest")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="the .safetensors file to write (model.safetensors inside a "
                        "directory); shards and OUT.index.json beside it when sharded")
    p.add_argument("--max-shard-size", default="5GB", metavar="SIZE",
                   help="tensor bytes per shard: 5GB (default, 10**9 per GB), 500MiB, 1000000")
    p.add_argument("--threads", type=int, metavar="N",
                   help="weightfill threads (default: its current setting)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true", help="replace existing files")


def _load_manifest(path: str, fail: Callable[[str], Any]) -> Manifest:
    try:
        return Manifest.load(path)
    except FileNotFoundError:
        fail(f"manifest {path!r} does not exist")
    except (ValueError, TypeError) as err:
        fail(f"manifest {path!r}: {err}")
    raise AssertionError("unreachable")


def run(args: argparse.Namespace, fail: Callable[[str], Any]) -> int:
    """Runs ``weightfill init``; returns the exit status."""
    m = _load_manifest(args.manifest, fail)
    try:
        written = save(m, args.output, max_shard_size=args.max_shard_size, threads=args.threads,
                       progress=not args.quiet, overwrite=args.overwrite)
    except (ValueError, TypeError, FileExistsError) as err:
        fail(str(err))
    except KeyboardInterrupt:
        print("weightfill init: interrupted; nothing was written", file=sys.stderr)
        return 130
    except OSError as err:
        print(f"weightfill init: {err}; nothing was written", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"wrote {len(m)} tensors, {m.nbytes} bytes: {', '.join(written)}")
    return 0


def add_verify_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``weightfill verify``."""
    p.add_argument("checkpoint", metavar="FILE_OR_INDEX",
                   help="a .safetensors file or a sharded checkpoint's .index.json")
    p.add_argument("manifest", nargs="?", metavar="MANIFEST.json",
                   help="the manifest to check against (default: the one in the file)")
    p.add_argument("--sample", type=int, metavar="N",
                   help="compare N random 1 MiB regions instead of every byte")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample's choice (default 0)")
    p.add_argument("--threads", type=int, metavar="N", help="weightfill threads")
    p.add_argument("--quiet", action="store_true", help="print only failures and the summary")


def run_verify(args: argparse.Namespace, fail: Callable[[str], Any]) -> int:
    """Runs ``weightfill verify``; 0 when every tensor matches, 1 otherwise."""
    m = _load_manifest(args.manifest, fail) if args.manifest else None
    if args.sample is not None and args.sample < 1:
        fail("--sample must be a positive number of regions")
    try:
        report = verify(args.checkpoint, m, sample=args.sample, seed=args.seed,
                        threads=args.threads)
    except (ValueError, TypeError, FileNotFoundError) as err:
        fail(str(err))
        return 2
    for t in report.tensors:
        if t.ok and args.quiet:
            continue
        line = f"{t.status:8s} {t.name}"
        if t.status == "mismatch":
            line += f" at element {list(t.index or ())} (flat {t.flat_index})"
        elif t.detail:
            line += f" ({t.detail})"
        print(line)
    bad = report.first_mismatch
    what = "sampled regions of " if report.sampled else ""
    if bad is None:
        print(f"OK: {what}{len(report.tensors)} tensors match ({report.checked_bytes} bytes "
              f"compared)")
        return 0
    where = (f" at element {list(bad.index or ())}" if bad.status == "mismatch"
             else f": {bad.status}")
    print(f"FAILED: first mismatching tensor {bad.name!r}{where}", file=sys.stderr)
    return 1
