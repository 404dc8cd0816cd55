"""The generation side of `archlab serve`: one worker thread runs one request at a time on the
model, fed by a queue, so that concurrent requests all complete (queued, not batched) and the
server's event loop never waits on the model. Text goes back through `emit` as it is made,
cut before any stop string, and never with a partial stop string that may still complete.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .serve_requests import Sampling


class StopText:
    """The decoded text so far -> the part that is safe to send.

    OpenAI's `stop`: the text ends before the first stop string and does not include it. While
    streaming, a tail of the text that is the start of a stop string is held back until the next
    tokens show whether it completes one (llama.cpp's server does the same: find_partial_stop_string)."""

    def __init__(self, stops: list[str]):
        self.stops = stops
        self.longest = max((len(s) for s in stops), default=0)
        self.sent = 0
        self.hit = False

    def feed(self, text: str, final: bool = False) -> str:
        """The new text to send, given all of it so far; sets `hit` once a stop string is seen."""
        start = max(0, self.sent - self.longest)
        found = [i for i in (text.find(s, start) for s in self.stops) if i >= 0]
        if found:
            self.hit = True
            end = max(min(found), self.sent)
        elif final:
            end = len(text)
        else:
            end = len(text) - self._partial(text)
        delta = text[self.sent:end] if end > self.sent else ""
        self.sent = max(self.sent, end)
        return delta

    def _partial(self, text: str) -> int:
        """The length of the longest tail of `text` that begins some stop string."""
        for n in range(min(self.longest, len(text)), 0, -1):
            tail = text[-n:]
            if any(s.startswith(tail) for s in self.stops):
                return n
        return 0


@dataclass
class Job:
    ids: list[int]
    sampling: Sampling
    max_tokens: int
    emit: Callable[[tuple], None]  # ("text", str) ... then ("done", finish_reason, n_tokens) or ("error", exc)
    cancelled: threading.Event = field(default_factory=threading.Event)


class Engine:
    """Runs Jobs one after another on a worker thread."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        self.jobs: queue.Queue = queue.Queue()
        self.current: Job | None = None
        # (finish_reason, tokens) of the latest jobs, finish_reason None for one whose client left
        self.history: deque[tuple[str | None, int]] = deque(maxlen=64)
        self.thread = threading.Thread(target=self._run, name="archlab-serve-worker", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> None:
        self.jobs.put(job)

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(timeout=30)

    def _run(self) -> None:
        while (job := self.jobs.get()) is not None:
            if job.cancelled.is_set():  # its client left while it waited
                continue
            self.current = job
            try:
                done = self._generate(job)
                self.history.append(done)
                job.emit(("done", *done))
            except Exception as e:  # sent to the client as an error; the worker lives on
                job.emit(("error", e))
            finally:
                self.current = None

    def _generate(self, job: Job) -> tuple[str | None, int]:
        from . import api
        from .generation import whole_text

        tok, s = self.tokenizer, job.sampling
        stop_ids = tok.stop_ids
        new: list[int] = []
        text = StopText(s.stop)
        for t in api.stream(self.model, job.ids, job.max_tokens, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                        seed=s.seed, stop=stop_ids or None):
            if job.cancelled.is_set():  # the client disconnected: stop spending the model on it
                return None, len(new)
            new.append(t)
            if t in stop_ids:
                break
            decoded = whole_text(tok, new)
            if decoded is None:  # half a UTF-8 character: wait for the rest
                continue
            delta = text.feed(decoded)
            if delta:
                job.emit(("text", delta))
            if text.hit:
                return "stop", len(new)
        ended_by_token = bool(new) and new[-1] in stop_ids
        body = new[:-1] if ended_by_token else new
        delta = text.feed(tok.decode(body, skip_special_tokens=True), final=True)
        if delta:
            job.emit(("text", delta))
        return ("stop" if ended_by_token or text.hit else "length"), len(new)
