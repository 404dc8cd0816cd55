"""Training: any architecture on real text, on one process or many (torchrun: DDP or FSDP2).

    loop.py          archlab.train: batches, steps, evaluation, logging
    options.py       TrainOptions, every option of `archlab train`, checked up front
    balance.py       MoE balancing: auxiliary loss, or DeepSeek-V3's loss-free bias
    checkpoint.py    atomic checkpoints, `latest` pointer, resume; torch.distributed.checkpoint for FSDP
    distributed.py   torchrun's processes, DDP / FSDP2 wrapping
    metrics.py       metrics.jsonl, the progress bar, loss.png
"""

from .._lazy import lazy_attributes
from .options import TrainError, TrainOptions  # torch-free: the CLI builds its parser from them

# the loop needs torch; imported on first use, so `archlab --help` and `compare` stay light
_LAZY = {"train": "loop", "TrainResult": "loop"}
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())

__all__ = ["train", "TrainOptions", "TrainResult", "TrainError"]
