#!/usr/bin/env python3
"""Train the tiny TIR model: a thin wrapper over `python -m tiny_tir.train` (same arguments).

python scripts/train_tiny_tir.py --out models/tiny-tir   # the shipped model (about 13 min, 2 cores)
python scripts/train_tiny_tir.py --smoke                 # a few steps; fails unless the loss falls
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tiny_tir.train import main

if __name__ == "__main__":
    main()
