"""Initialize a sharded Llama-style model with FSDP2 on CPU ranks, each rank filling only its
own shards (docs/torch.md, "Sharded models").

Launch with torch.multiprocessing (spawn), one process per rank, gloo on 127.0.0.1::

    python examples/fsdp2_llama.py --ranks 2              # ~1.1 B parameters (TinyLlama shape)
    python examples/fsdp2_llama.py --ranks 1 --config tiny

or under torchrun, which sets RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT (``--ranks`` is then
ignored)::

    torchrun --nproc-per-node 2 examples/fsdp2_llama.py

The recipe is torchtitan's: build the model on the meta device, ``fully_shard`` every block
and then the root, then ``weightfill.torch.materialize``, which gives each rank storage for its
local shards only and fills them with the values a single process would put there (so the
gathered model does not depend on the number of ranks). Each rank prints the wall, user and
system CPU time of ``materialize`` (CPU time is less noisy on a shared machine), the bytes of
its local shards and its peak RSS (above the RSS before, it is the local shards: no rank
holds a full tensor).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import resource
import socket
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

CONFIGS = {
    # TinyLlama-1.1B's shape (d 2048, 22 layers, 32 heads, 4 KV heads, SwiGLU 5632, vocab 32000)
    "1b": dict(vocab=32000, dim=2048, layers=22, heads=32, kv_heads=4, hidden=5632),
    "tiny": dict(vocab=1000, dim=64, layers=2, heads=4, kv_heads=2, hidden=172),
}


@dataclass
class Config:
    vocab: int
    dim: int
    layers: int
    heads: int
    kv_heads: int
    hidden: int


def rope(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding, computed on the fly (no buffer to materialize)."""
    _, _, t, d = x.shape
    freqs = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
    angles = torch.outer(torch.arange(t, dtype=torch.float32), freqs)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = c.heads, c.kv_heads, c.dim // c.heads
        self.wq = nn.Linear(c.dim, c.heads * self.head_dim, bias=False)
        self.wk = nn.Linear(c.dim, c.kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(c.dim, c.kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(c.heads * self.head_dim, c.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        y = F.scaled_dot_product_attention(rope(q), rope(k), v, is_causal=True,
                                           enable_gqa=True)
        return self.wo(y.transpose(1, 2).reshape(b, t, -1))  # type: ignore[no-any-return]


class Block(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        self.attention_norm = nn.RMSNorm(c.dim)
        self.attention = Attention(c)
        self.ffn_norm = nn.RMSNorm(c.dim)
        self.w1 = nn.Linear(c.dim, c.hidden, bias=False)
        self.w2 = nn.Linear(c.hidden, c.dim, bias=False)
        self.w3 = nn.Linear(c.dim, c.hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x))
        h = self.ffn_norm(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))  # type: ignore[no-any-return]


class Llama(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        self.tok_embeddings = nn.Embedding(c.vocab, c.dim)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = nn.RMSNorm(c.dim)
        self.output = nn.Linear(c.dim, c.vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.tok_embeddings(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.output(self.norm(x))  # type: ignore[no-any-return]


# A Llama init in the spirit of torchtitan's init_weights (not its exact bounds): embeddings
# N(0, 1), projections truncated normal (±2 std) with std 0.02, the projections into the
# residual stream depth-scaled; the RMSNorms keep torch's law (ones).
def rules(c: Config) -> dict:
    depth_std = 0.02 / math.sqrt(2 * c.layers)
    return {"tok_embeddings.weight": ("normal", {"std": 1.0}),
            "*.wo.weight": ("truncated_normal", {"std": depth_std}),
            "*.w2.weight": ("truncated_normal", {"std": depth_std}),
            "*.weight": ("truncated_normal", {"std": 0.02})}


def run(rank: int, world: int, args: argparse.Namespace) -> None:
    import weightfill as wf
    import weightfill.torch as wft
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    torch.set_num_threads(args.threads)
    wf.set_num_threads(args.threads)
    dist.init_process_group("gloo", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=600))
    try:
        c = Config(**CONFIGS[args.config])
        mesh = init_device_mesh("cpu", (world,))
        with torch.device("meta"):
            model = Llama(c).to(getattr(torch, args.dtype))
        for layer in model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        rss_before = _rss_mib()
        dist.barrier()

        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        manifest = wft.materialize(model, seed=args.seed, rules=rules(c))
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        user, system = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime

        local = sum(p.to_local().numel() * p.element_size() for p in model.parameters())
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        params = sum(math.prod(e.shape) for e in manifest.entries)
        largest = max(e.nbytes for e in manifest.entries)
        dist.barrier()
        print(f"rank {rank}/{world}: materialize {wall:.2f} s wall, {user:.2f} s user + "
              f"{system:.2f} s system CPU; "
              f"local shards {local / 2**20:.1f} MiB of {manifest.nbytes / 2**20:.1f} MiB "
              f"({params / 1e6:.1f} M parameters, largest tensor {largest / 2**20:.1f} MiB); "
              f"RSS {rss_before:.0f} MiB before, peak {peak:.0f} MiB", flush=True)
        if args.forward:
            with torch.no_grad():
                out = model(torch.arange(8).view(1, 8) % c.vocab)
            print(f"rank {rank}: forward ok, logits {tuple(out.shape)}", flush=True)
        # Every rank done with its collectives before any tears the group down: a rank that
        # destroyed it while its peer's last one was in flight was aborted by gloo
        # ("terminate called without an active exception"; seen once under load).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _rss_mib() -> float:
    """Current RSS (Linux: /proc; ``ru_maxrss`` above is in KiB there too)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _spawned(rank: int, world: int, port: int, args: argparse.Namespace) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    run(rank, world, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2, help="processes to spawn")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="1b")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--threads", type=int, default=1, help="threads per rank")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--forward", action="store_true", help="run one forward pass after")
    args = parser.parse_args()
    if "RANK" in os.environ:  # under torchrun
        run(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), args)
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_spawned, args=(args.ranks, port, args), nprocs=args.ranks)


if __name__ == "__main__":
    main()
