"""A tiny tool-integrated-reasoning model trained here, on CPU, on synthetic olympiad-style problems.

Modules: problems (seeded generator), traces (markdown-dialect TIR rendering and loss mask),
tokenizer (characters, digit groups and copy keys, as an HF fast tokenizer), model (a small Llama for
vLLM CPU), train, evaluate (with / without the tool, through vLLM).
"""
