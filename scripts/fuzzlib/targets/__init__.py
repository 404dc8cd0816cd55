"""Each target: NAME, make_seeds(folder) (the undamaged inputs, made once by this tree's archlab
and the test reference), references(seeds) -> {key: run} (outputs of the undamaged inputs) and
case(seeds, rng, index) -> Case (drawn from rng alone)."""

from . import cli, config, generation, gguf, safetensors, tokenizer

TARGETS = {m.NAME: m for m in (config, gguf, safetensors, tokenizer, cli, generation)}
