"""Training: any architecture on real text, on one process or many (torchrun: DDP or FSDP2).

    loop.py          archlab.train: batches, steps, evaluation, logging
    options.py       TrainOptions, every option of `archlab train`, checked up front
    balance.py       MoE balancing: auxiliary loss, or DeepSeek-V3's loss-free bias
    checkpoint.py    atomic checkpoints, `latest` pointer, resume; torch.distributed.checkpoint for FSDP
    distributed.py   torchrun's processes, DDP / FSDP2 wrapping
    metrics.py       metrics.jsonl, the progress bar, loss.png
"""

from .loop import TrainResult, train
from .options import TrainError, TrainOptions

__all__ = ["train", "TrainOptions", "TrainResult", "TrainError"]
