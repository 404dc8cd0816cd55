"""One process or many: what torchrun set up, and the model wrapped for it.

Launched by `torchrun --nproc-per-node N -m archlab train ...`, each process finds RANK,
WORLD_SIZE and LOCAL_RANK in its environment and joins the group (NCCL on GPUs, gloo on
CPUs). Every collective here is torch.distributed's own; nothing is hand-rolled.

  ddp   DistributedDataParallel: every process holds the whole model and optimizer; gradients
        are averaged in backward.
  fsdp  FSDP2 (torch.distributed.fsdp.fully_shard): parameters, gradients and optimizer state
        sharded across processes, each block gathered just in time. Checkpoints are written
        with torch.distributed.checkpoint, so they resume on any number of processes.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .options import TrainError


@dataclass
class Processes:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    strategy: str  # "none", "ddp" or "fsdp"
    owns_group: bool  # this code started the process group, so it ends it

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The mean of t over every process (t itself with one)."""
        if self.distributed and self.world > 1:
            t = t.clone()
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            t /= self.world
        return t

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.distributed and self.world > 1:
            t = t.clone()
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def all_ok(self, ok: bool) -> bool:
        """True when `ok` holds on every process (so all of them take the same branch)."""
        if not (self.distributed and self.world > 1):
            return ok
        flag = torch.tensor([1 if ok else 0], device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def close(self) -> None:
        if self.owns_group and self.distributed:
            dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(strategy: str, device: str | None = None) -> Processes:
    """The processes of this run: torchrun's when launched by it, else this one alone."""
    env = os.environ
    launched = "RANK" in env and "WORLD_SIZE" in env
    world = int(env.get("WORLD_SIZE", 1)) if launched else 1
    rank = int(env.get("RANK", 0)) if launched else 0
    local_rank = int(env.get("LOCAL_RANK", 0)) if launched else 0
    if strategy == "auto":
        strategy = "ddp" if world > 1 else "none"
    if strategy == "none" and world > 1:
        raise TrainError(f"--strategy none: launched as {world} processes; use --strategy ddp or fsdp (or one process)")
    if device is not None:
        from ..memory import usable_device

        try:
            dev = usable_device(device)
        except ValueError as e:
            raise TrainError(f"--device: {e}") from None
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", local_rank)
    elif torch.cuda.is_available():
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    owns = False
    if strategy != "none" and not dist.is_initialized():
        if not launched:
            # one process with --strategy fsdp (e.g. resuming a sharded run alone): a group of one
            env.setdefault("MASTER_ADDR", "127.0.0.1")
            env.setdefault("MASTER_PORT", str(_free_port()))
            env.setdefault("RANK", "0")
            env.setdefault("WORLD_SIZE", "1")
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=dev if dev.type == "cuda" else None)
        owns = True
    return Processes(rank, world, local_rank, dev, strategy, owns)


def wrap(model: nn.Module, procs: Processes) -> nn.Module:
    """The model as the strategy runs it. FSDP shards each block, then the rest (embeddings,
    final norm, head) as the root group, as torchtitan does."""
    if procs.strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        # broadcast_buffers=False: the experts' load counters are each process's own count
        # (summed explicitly where needed); the routers' selection biases move identically
        # on every process, from loads summed over all of them.
        import inspect

        ids = [procs.device.index] if procs.device.type == "cuda" else None
        # (renamed in torch 2.13; both sync once at start, when the buffers are equal anyway)
        knob = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters else "broadcast_buffers"
        return DistributedDataParallel(model, device_ids=ids, **{knob: False})
    if procs.strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in model.layers:
            fully_shard(block)
        fully_shard(model)
        return model
    return model


def no_sync(wrapped: nn.Module, procs: Processes, last_micro_step: bool):
    """A context in which backward accumulates gradients locally: every micro-step but the
    last of an optimizer step skips the gradient all-reduce."""
    from contextlib import nullcontext

    if procs.strategy == "ddp" and not last_micro_step:
        return wrapped.no_sync()
    if procs.strategy == "fsdp":
        wrapped.set_requires_gradient_sync(last_micro_step)
    return nullcontext()
