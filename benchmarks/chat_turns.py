"""Time to the first token of each chat turn: a ChatSession (its KV cache kept, only the new turn
prefilled) beside the stateless path (the whole conversation prefilled every turn, as `archlab
chat` did before the session, through archlab.stream).

    python benchmarks/chat_turns.py [MODEL] [--turns 8] [--repeats 5] [--quant keep]

Both run the same scripted conversation greedily, and every reply of the session must equal the
stateless one (else the script stops). Turns run interleaved (session, stateless, session, ...)
and the table gives the median over repeats of each turn's time to the first token and the
tokens prefilled, with the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import archlab
from archlab.chat_session import ChatSession, Turn
from archlab.hub import resolve_model

QUESTIONS = ["What is the capital of France?", "And of Italy?", "Which of the two is larger?",
             "Name a famous museum in each.", "What should I eat there?", "How do I travel between them?",
             "What is the weather like in spring?", "Thanks! Anything else I should know?",
             "How many people live in each?", "Which one would you visit first?"]


def _stateless(model, tok, messages, max_new) -> tuple[list[int], float, int]:
    ids = tok.encode_prompt(tok.apply_chat_template(messages, add_generation_prompt=True), templated=True)
    start = time.perf_counter()
    first, out = None, []
    for t in archlab.stream(model, ids, max_new, stop=tok.stop_ids):
        first = first if first is not None else time.perf_counter() - start
        if t in tok.stop_ids:
            break
        out.append(t)
    return out, first, len(ids)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default="smollm2-135m-instruct")
    p.add_argument("--turns", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--quant", default="keep")
    args = p.parse_args()
    path = resolve_model(args.model)
    model, tok = archlab.load(path, quant=args.quant).eval(), archlab.load_tokenizer(path)
    kept = {i: [] for i in range(args.turns)}
    full = {i: [] for i in range(args.turns)}
    fed = {}
    for _ in range(args.repeats):
        s = ChatSession(model, tok, max_new_tokens=args.max_new_tokens, temperature=0)
        for i, q in enumerate(QUESTIONS[:args.turns]):
            want, first, n = _stateless(model, tok, s.messages + [{"role": "user", "content": q}], args.max_new_tokens)
            full[i].append(first)
            turn = Turn()
            for _piece in s.reply(q, turn):
                pass
            if turn.tokens != want:
                raise SystemExit(f"turn {i + 1}: the session's reply differs from the stateless one")
            kept[i].append(turn.first_token_s)
            fed[i] = (turn.prefilled, n)
    print(f"{args.model} ({args.quant}), {args.repeats} repeats, medians; every reply equal to the stateless path's")
    print(f"{'turn':>4} {'prefilled: session':>19} {'stateless':>10} {'first token ms: session':>24} {'stateless':>10} {'ratio':>6}")
    for i in range(args.turns):
        a, b = statistics.median(kept[i]) * 1000, statistics.median(full[i]) * 1000
        print(f"{i + 1:>4} {fed[i][0]:>19} {fed[i][1]:>10} {a:>24.0f} {b:>10.0f} {b / a:>5.1f}x")


if __name__ == "__main__":
    main()
