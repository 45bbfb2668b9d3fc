"""DTensor parameters (FSDP2, tensor parallel, ``distribute_tensor``): which region of the full
tensor a rank's local shard is, and local storage for meta shards (docs/torch.md, "Sharded
models").

``torch.distributed`` is missing from some torch builds, so this module imports it only inside
the functions that receive a DTensor, and :func:`is_dtensor` never imports it (a DTensor
exists only once its module has been imported).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Optional, cast

import torch

from ._tensors import allocate

if TYPE_CHECKING:
    from torch.distributed.device_mesh import DeviceMesh
    from torch.distributed.tensor import DTensor

__all__ = ["is_dtensor", "region", "local", "allocate_like"]

Region = Optional[tuple[slice, ...]]


def is_dtensor(t: object) -> bool:
    """Whether ``t`` is a DTensor (no DTensor exists before torch.distributed.tensor was
    imported, so this never imports it)."""
    api = sys.modules.get("torch.distributed.tensor")
    return api is not None and isinstance(t, api.DTensor)


def region(name: str, tensor: torch.Tensor) -> Region:
    """The region of the full tensor that this rank's local shard of DTensor ``tensor`` holds
    (None: all of it), or a ValueError naming ``name`` and the placement weightfill cannot
    express as one region."""
    from torch.distributed.tensor import Partial, Replicate, Shard
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset
    from torch.distributed.tensor.placement_types import _StridedShard

    t = cast("DTensor", tensor)
    mesh, placements, shape = t.device_mesh, tuple(t.placements), tuple(t.shape)
    for i, p in enumerate(placements):
        if isinstance(p, Partial):
            raise ValueError(
                f"{name}: placement {p!r} on mesh dimension {i} holds a partial sum on each "
                "rank, not a slice of the full tensor; weightfill fills Shard(d) and "
                "Replicate() placements (redistribute to one of those first)")
        if not isinstance(p, (Shard, _StridedShard, Replicate)):
            raise ValueError(f"{name}: placement {p!r} on mesh dimension {i} is not one "
                             "weightfill can fill (Shard(d), Replicate())")
    if mesh.get_coordinate() is None:  # this rank is not in the mesh: it holds nothing
        return tuple(slice(0, 0) for _ in shape) if shape else None
    local_shape, offset = compute_local_shape_and_global_offset(shape, mesh, placements)
    if any(isinstance(p, _StridedShard) for p in placements):
        _check_blocks(name, shape, mesh, placements, local_shape, offset)
    if tuple(local_shape) == shape:
        return None
    return tuple(slice(o, o + n) for o, n in zip(offset, local_shape))


def _check_blocks(name: str, shape: tuple[int, ...], mesh: DeviceMesh,
                  placements: tuple[Any, ...], local_shape: tuple[int, ...],
                  offset: tuple[int, ...]) -> None:
    """A ValueError unless each sharded dimension of this rank's shard is one run of indices.

    ``compute_local_shape_and_global_offset`` gives only the first index of a dimension: a
    ``_StridedShard`` can leave a rank every other block (FSDP2 over a TP shard of the same
    dimension does not, a bare ``_StridedShard`` does). The indices come from each placement's
    own ``_split_tensor`` (the split ``distribute_tensor`` applies to data), applied in mesh
    order to an index range of the dimension: torch has no public function that lists them.
    """
    coordinate = mesh.get_coordinate()
    assert coordinate is not None  # region() returned earlier for a rank outside the mesh
    for d in {p.dim for p in placements if hasattr(p, "dim")}:
        index = torch.arange(shape[d])
        for i, p in enumerate(placements):
            if getattr(p, "dim", None) == d:
                pieces, _ = p._split_tensor(index, mesh.size(i), with_padding=False,
                                            contiguous=False)
                index = pieces[coordinate[i]]
        run = torch.arange(offset[d], offset[d] + local_shape[d])
        if index.numel() != local_shape[d] or not torch.equal(index, run):
            raise ValueError(
                f"{name}: placements {placements!r} leave this rank a strided set of "
                f"indices along dimension {d} (not one block of the full tensor), which "
                "weightfill cannot fill as a region; use Shard/Replicate placements")


def local(t: torch.Tensor) -> torch.Tensor:
    """The local shard of DTensor ``t`` (the tensor itself, not a copy, so filling it fills
    the DTensor; FSDP2's is a view of its padded storage)."""
    with torch.no_grad():
        return cast("DTensor", t).to_local()


def allocate_like(tensor: torch.Tensor) -> torch.Tensor:
    """A DTensor with the mesh, placements, shape and stride of the meta DTensor ``tensor``
    over new CPU storage (weightfill's allocator) of its local shape only."""
    from torch.distributed.tensor import DTensor

    t = cast("DTensor", tensor)
    shard = allocate(tuple(local(t).shape), t.dtype)
    return DTensor.from_local(shard, t.device_mesh, t.placements, run_check=False,
                              shape=t.shape, stride=t.stride())
