"""OpenAI request bodies -> checked generation settings, for `archlab serve` (no torch, no FastAPI).

Field names, defaults and ranges follow OpenAI's API reference
(https://platform.openai.com/docs/api-reference/chat/create and .../completions/create):
temperature in [0, 2] (default 1), top_p in (0, 1] (default 1), n = 1, stop = a string or up
to 4 strings, max_tokens / max_completion_tokens. top_k is an extension (as in vLLM and the
llama.cpp server); 0 or a negative value turns it off, as both do. A field OpenAI defines that
we cannot honour (n > 1, logprobs, tools, penalties, logit_bias ...) is refused by name, never
silently ignored: a client must not get a different behaviour than it asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


class RequestError(ValueError):
    """A bad request: sent as HTTP `status` with OpenAI's error body naming `param`."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None, status: int = 400):
        super().__init__(message)
        self.param, self.code, self.status = param, code, status

    def body(self) -> dict:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": str(self), "type": kind, "param": self.param, "code": self.code}}


@dataclass
class Sampling:
    max_tokens: int | None  # None: up to the context (chat) or the server's limit
    temperature: float = 1.0
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    max_tokens_param: str = "max_tokens"  # the field the client used, for error messages


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(body: dict, name: str, default, low: float, high: float, low_open: bool = False):
    v = body.get(name)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise RequestError(f"{name}: expected a number, got {v!r}", name)
    if v < low or v > high or (low_open and v == low):
        span = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise RequestError(f"{name}: {v!r} is out of range, it must be in {span}", name)
    return float(v)


# fields OpenAI defines that would change the output if honoured, with the value that means "off"
_UNSUPPORTED = {
    "logprobs": (None, False), "top_logprobs": (None, 0), "logit_bias": (None, {}),
    "presence_penalty": (None, 0, 0.0), "frequency_penalty": (None, 0, 0.0), "best_of": (None, 1),
    "echo": (None, False), "suffix": (None, ""), "tools": (None, []), "functions": (None, []),
    "tool_choice": (None, "none"), "function_call": (None, "none"), "response_format": (None, {"type": "text"}),
    "audio": (None,), "prediction": (None,),
}


def sampling(body: dict, max_tokens_default: int | None) -> Sampling:
    """The generation settings of a completions or chat body (each checked, errors name the field)."""
    for name, off in _UNSUPPORTED.items():
        if name in body and body[name] not in off:
            raise RequestError(f"{name}: not supported by archlab serve (got {body[name]!r}); leave it out", name,
                               "unsupported_parameter")
    n = body.get("n")
    if n is not None and (not _is_int(n) or n != 1):
        raise RequestError(f"n: only n=1 is supported (one choice per request), got {n!r}", "n", "unsupported_parameter")
    max_tokens = max_tokens_default
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    if body.get(name) is not None:
        max_tokens = body[name]
        if not _is_int(max_tokens) or max_tokens <= 0:
            raise RequestError(f"{name}: expected an integer >= 1, got {max_tokens!r}", name)
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
    top_p = _number(body, "top_p", None, 0.0, 1.0, low_open=True)
    top_k = body.get("top_k")
    if top_k is not None and not _is_int(top_k):
        raise RequestError(f"top_k: expected an integer (0 or less: off), got {top_k!r}", "top_k")
    seed = body.get("seed")
    # torch.Generator.manual_seed's range
    if seed is not None and (not _is_int(seed) or not -(2**63) <= seed < 2**64):
        raise RequestError(f"seed: expected an integer in [-2**63, 2**64), got {seed!r}", "seed")
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise RequestError(f"stream: expected true or false, got {stream!r}", "stream")
    options = body.get("stream_options")
    if options is not None and (not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool)):
        raise RequestError(f"stream_options: expected {{\"include_usage\": true|false}}, got {options!r}", "stream_options")
    return Sampling(max_tokens=max_tokens, temperature=temperature, top_p=top_p, top_k=top_k if top_k and top_k > 0 else None,
                    seed=seed, stop=_stops(body.get("stop")), stream=bool(stream),
                    include_usage=bool(options and options.get("include_usage")), max_tokens_param=name)


def _stops(stop) -> list[str]:
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise RequestError(f"stop: expected a string or a list of strings, got {stop!r}", "stop")
    if len(stops) > 4:
        raise RequestError(f"stop: at most 4 stop strings, got {len(stops)}", "stop")
    if any(not s for s in stops):
        raise RequestError("stop: an empty stop string would stop before the first token", "stop")
    return stops


def model_name(body: dict, served: str) -> None:
    name = body.get("model")
    if not isinstance(name, str):
        raise RequestError(f"model: expected the model's name (a string), got {name!r}", "model")
    if name != served:
        raise RequestError(f"model: the model {name!r} does not exist; this server serves {served!r}", "model",
                           "model_not_found", status=404)


def messages(body: dict) -> list[dict]:
    """A chat body's messages as plain {role, content: str} dicts for the chat template."""
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise RequestError(f"messages: expected a non-empty list of messages, got {msgs!r}"[:300], "messages")
    out = []
    for i, m in enumerate(msgs):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise RequestError(f"{where}: expected an object with a \"role\" string and a \"content\"", f"{where}.role")
        content = m.get("content")
        if isinstance(content, list):  # content parts: only text can be given to a text model
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content):
                raise RequestError(f"{where}.content: only text parts ({{\"type\": \"text\", \"text\": ...}}) are supported",
                                   f"{where}.content")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise RequestError(f"{where}.content: expected a string, got {content!r}"[:300], f"{where}.content")
        out.append({"role": m["role"], "content": content})
    return out


def prompt(body: dict) -> str | list[int]:
    """A completions body's prompt: a string, or a list of token ids (one prompt only)."""
    p = body.get("prompt")
    if isinstance(p, list) and len(p) == 1 and isinstance(p[0], (str, list)):
        p = p[0]  # a batch of one
    if isinstance(p, str):
        return p
    if isinstance(p, list) and p and all(_is_int(t) for t in p):
        return p
    if isinstance(p, list) and len(p) > 1 and all(isinstance(x, (str, list)) for x in p):
        raise RequestError(f"prompt: one prompt per request is supported, got {len(p)}", "prompt", "unsupported_parameter")
    raise RequestError(f"prompt: expected a string or a list of token ids, got {p!r}"[:300], "prompt")


def room(prompt_tokens: int, context: int, wanted: int | None, limit: int, param: str, max_param: str = "max_tokens") -> int:
    """The completion's token budget: the request's own, within the context and the server's limit."""
    if prompt_tokens >= context:
        raise RequestError(f"{param}: the prompt has {prompt_tokens} tokens, the model's context is {context}: "
                           "no room for a reply", param, "context_length_exceeded")
    if wanted is None:
        return min(limit, context - prompt_tokens)
    if wanted > limit:
        raise RequestError(f"{max_param}: {wanted} is above this server's limit of {limit} (archlab serve "
                           "--max-new-tokens-limit)", max_param)
    if prompt_tokens + wanted > context:
        # OpenAI's own rule and wording: prompt and completion together must fit the context
        raise RequestError(f"{max_param}: this model's maximum context length is {context} tokens; you requested "
                           f"{prompt_tokens + wanted} ({prompt_tokens} in the prompt, {wanted} for the completion)",
                           max_param, "context_length_exceeded")
    return wanted
