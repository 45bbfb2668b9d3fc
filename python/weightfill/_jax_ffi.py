"""An XLA FFI target (CPU) that lets the engine write straight into the output buffer XLA
allocated for a jitted initializer call.

``jax.pure_callback`` hands the callback's NumPy result to XLA, which copies it into its own
output buffer: for a 4096 x 4096 float32 tensor that copy costs more than the fill itself.
An FFI handler receives XLA's buffers instead, so the fill writes in place. jaxlib provides
the C API (``xla/ffi/api/c_api.h``) but no Python-level way to write a handler, and the
engine's C++ must not depend on XLA; so the handler is a ``ctypes`` function written against
that header's structs (FFI API 0.x: ``XLA_FFI_CallFrame``, ``XLA_FFI_Buffer``, the metadata
extension), which jaxlib keeps ABI-stable within a major version. :func:`available` is False
(and the initializers fall back to ``pure_callback``) when the jaxlib's FFI major version is
not the one this module was written for, or registration fails.

The target takes two inputs, the key's uint32 words ``(*batch, n)`` and an int32 slot number
``(*batch_or_1,)``, and one output ``(*batch, *shape)``; the slot selects the Python fill
function registered with :func:`slot` (one per initializer, shape and dtype).
"""

from __future__ import annotations

import ctypes
import threading
from typing import Callable, Optional

import numpy as np

__all__ = ["available", "slot", "TARGET"]

TARGET = "weightfill_fill"
_API_MAJOR, _API_MINOR = 0, 3  # XLA_FFI_API_MAJOR / MINOR of the header this follows
_METADATA_EXTENSION = 1  # XLA_FFI_Extension_Metadata
_EXECUTE = 3  # XLA_FFI_ExecutionStage_EXECUTE
_ERR_INTERNAL = 13  # XLA_FFI_Error_Code_INTERNAL
_c_size, _c_ptr = ctypes.c_size_t, ctypes.c_void_p


class _ExtensionBase(ctypes.Structure):
    _fields_ = [("struct_size", _c_size), ("type", ctypes.c_int), ("next", _c_ptr)]


class _ApiVersion(ctypes.Structure):
    _fields_ = [("struct_size", _c_size), ("extension_start", _c_ptr),
                ("major_version", ctypes.c_int), ("minor_version", ctypes.c_int)]


class _Metadata(ctypes.Structure):
    _fields_ = [("struct_size", _c_size), ("api_version", _ApiVersion),
                ("traits", ctypes.c_uint32)]


class _MetadataExtension(ctypes.Structure):
    _fields_ = [("extension_base", _ExtensionBase), ("metadata", ctypes.POINTER(_Metadata))]


class _List(ctypes.Structure):  # XLA_FFI_Args and XLA_FFI_Rets share this layout
    _fields_ = [("struct_size", _c_size), ("extension_start", _c_ptr),
                ("size", ctypes.c_int64), ("types", _c_ptr),
                ("items", ctypes.POINTER(_c_ptr))]


class _Attrs(ctypes.Structure):
    _fields_ = [("struct_size", _c_size), ("extension_start", _c_ptr),
                ("size", ctypes.c_int64), ("types", _c_ptr), ("names", _c_ptr),
                ("attrs", _c_ptr)]


class _CallFrame(ctypes.Structure):
    _fields_ = [("struct_size", _c_size), ("extension_start", _c_ptr), ("api", _c_ptr),
                ("ctx", _c_ptr), ("stage", ctypes.c_int), ("args", _List), ("rets", _List),
                ("attrs", _Attrs), ("future", _c_ptr)]


class _Buffer(ctypes.Structure):
    _fields_ = [("struct_size", _c_size), ("extension_start", _c_ptr),
                ("dtype", ctypes.c_int), ("data", _c_ptr), ("rank", ctypes.c_int64),
                ("dims", ctypes.POINTER(ctypes.c_int64))]


class _ErrorCreateArgs(ctypes.Structure):
    _fields_ = [("struct_size", _c_size), ("extension_start", _c_ptr),
                ("message", ctypes.c_char_p), ("errc", ctypes.c_int)]


_ErrorCreate = ctypes.CFUNCTYPE(_c_ptr, ctypes.POINTER(_ErrorCreateArgs))


class _Api(ctypes.Structure):
    _fields_ = [("struct_size", _c_size), ("extension_start", _c_ptr),
                ("api_version", _ApiVersion), ("internal_api", _c_ptr),
                ("error_create", _ErrorCreate)]


Fill = Callable[[np.ndarray, np.ndarray], None]
_slots: list[Fill] = []
_slot_of: dict[object, int] = {}
_lock = threading.Lock()


def _view(buf: _Buffer, dtype: np.dtype) -> np.ndarray:
    dims = tuple(buf.dims[i] for i in range(buf.rank))
    n = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if n == 0:
        return np.empty(dims, dtype)
    raw = (ctypes.c_uint8 * n).from_address(buf.data)
    return np.frombuffer(raw, np.uint8).view(dtype).reshape(dims)


def _error(api_ptr: int, message: str) -> Optional[int]:
    api = _Api.from_address(api_ptr)
    args = _ErrorCreateArgs(ctypes.sizeof(_ErrorCreateArgs), None,
                            message.encode("utf-8", "replace"), _ERR_INTERNAL)
    return api.error_create(ctypes.byref(args))  # type: ignore[no-any-return]


@ctypes.CFUNCTYPE(_c_ptr, _c_ptr)
def _handler(frame_ptr: int) -> Optional[int]:
    frame = _CallFrame.from_address(frame_ptr)
    try:
        if frame.extension_start:
            ext = _ExtensionBase.from_address(frame.extension_start)
            if ext.type == _METADATA_EXTENSION:  # registration asks which API we speak
                md = _MetadataExtension.from_address(frame.extension_start).metadata.contents
                md.api_version = _ApiVersion(ctypes.sizeof(_ApiVersion), None, _API_MAJOR,
                                             _API_MINOR)
                md.traits = 0
                return None
        if frame.stage != _EXECUTE:
            return None
        words = _Buffer.from_address(frame.args.items[0])
        index = _Buffer.from_address(frame.args.items[1])
        out = _Buffer.from_address(frame.rets.items[0])
        k = int(_view(index, np.dtype(np.int32)).ravel()[0])
        fill = _slots[k]
        fill(_view(words, np.dtype(np.uint32)).copy(), _view(out, fill.dtype))  # type: ignore[attr-defined]
        return None
    except BaseException as err:  # an exception must not cross into XLA
        return _error(frame.api, f"weightfill: {type(err).__name__}: {err}")


_state: dict[str, bool] = {}


def available() -> bool:
    """Whether the FFI target is registered (once per process; False on a CPU-less or
    incompatible jaxlib, or with ``WEIGHTFILL_JAX_FFI=0``)."""
    with _lock:
        if "ok" not in _state:
            _state["ok"] = _register()
        return _state["ok"]


def _register() -> bool:
    import os

    if os.environ.get("WEIGHTFILL_JAX_FFI", "1") == "0":
        return False
    try:
        import jax

        header = os.path.join(jax.ffi.include_dir(), "xla", "ffi", "api", "c_api.h")
        with open(header, encoding="utf-8") as f:
            text = f.read()
        if f"#define XLA_FFI_API_MAJOR {_API_MAJOR}\n" not in text:
            return False
        jax.ffi.register_ffi_target(TARGET, jax.ffi.pycapsule(_handler), platform="cpu")
    except Exception:  # noqa: BLE001 - any failure means: use pure_callback instead
        return False
    return True


def slot(key: object, fill: Fill, dtype: np.dtype) -> int:
    """The slot number of ``fill(words, out)`` (registered once per ``key``)."""
    with _lock:
        if key not in _slot_of:
            fill.dtype = dtype  # type: ignore[attr-defined]
            _slot_of[key] = len(_slots)
            _slots.append(fill)
        return _slot_of[key]
