"""A test double of Kaggle's `kaggle_evaluation` package for AIMO3, written from its public behaviour.

It is importable under the real name so that a notebook's own cells run against it unchanged
(`import kaggle_evaluation.aimo_3_inference_server`). Tests put this folder on `sys.path`; it is never
installed. `core.py` says which real rule each part reproduces.
"""
