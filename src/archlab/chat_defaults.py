"""Sampling defaults of `archlab chat` (no torch here: the CLI shows them in --help).

ollama's documented defaults (docs/modelfile.md, "Valid Parameters and Values": temperature
0.8, top_k 40, top_p 0.9); llama.cpp's common/common.h has the same temperature and top_k,
with top_p 0.95. Greedy decoding makes small models repeat themselves within a few lines, so a
chat samples unless asked not to (--temperature 0)."""

TEMPERATURE = 0.8
TOP_K = 40
TOP_P = 0.9
