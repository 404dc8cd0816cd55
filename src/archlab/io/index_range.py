"""A regex for the layer indices lo <= i < hi, of a size that grows with their digits, not with
hi - lo: the multi-token-prediction layers a checkpoint stores after the model's own
(DeepSeek's num_nextn_predict_layers, GLM's nextn_predict_layers) are ignored by index, and a
pattern listing every index would be as long as a hostile file's count."""

from __future__ import annotations


def index_range(lo: int, hi: int) -> str:
    """A regex (no anchors) matching the decimal integers lo <= i < hi, written without leading
    zeros; lo >= 1. Empty range: a pattern that matches nothing."""
    if lo < 1:
        raise ValueError(f"index_range: lo must be >= 1, got {lo}")
    last = hi - 1
    pieces = []
    while lo <= last:
        # the largest block lo .. lo + m * 10**k - 1 that starts on a multiple of 10**k and fits
        k = 0
        while lo % 10 ** (k + 1) == 0 and lo + 10 ** (k + 1) - 1 <= last:
            k += 1
        step = 10**k
        head, digit = divmod(lo // step, 10)
        m = 1
        while digit + m <= 9 and lo + (m + 1) * step - 1 <= last:
            m += 1
        digits = str(digit) if m == 1 else f"[{digit}-{digit + m - 1}]"
        pieces.append(f"{head or ''}{digits}" + (rf"\d{{{k}}}" if k else ""))
        lo += m * step
    return "(?:%s)" % "|".join(pieces) if pieces else "(?!)"
