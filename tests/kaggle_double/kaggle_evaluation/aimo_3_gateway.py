"""The AIMO3 gateway: `test.csv` rows, shuffled, one per call; a response timeout of 9 hours after the first."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import polars as pl

from kaggle_evaluation.core import BaseGateway, GatewayRuntimeError

COMPETITION_TEST_CSV = "/kaggle/input/ai-mathematical-olympiad-progress-prize-3/test.csv"
USE_PRIVATE_SET = False  # the public rerun shuffles with a fresh seed; the private one keeps a fixed order
RESPONSE_TIMEOUT_SECONDS = float(os.environ.get("KAGGLE_DOUBLE_RESPONSE_TIMEOUT_S", 60 * 60 * 9))


class AIMO3Gateway(BaseGateway):
    def __init__(self, data_paths: tuple[str, ...] | None = None, port: int | None = None) -> None:
        super().__init__(data_paths, port)
        self.set_response_timeout_seconds(RESPONSE_TIMEOUT_SECONDS)

    def unpack_data_paths(self) -> None:
        self.test_path = self.data_paths[0] if self.data_paths else COMPETITION_TEST_CSV

    def generate_data_batches(self) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
        test = pl.read_csv(self.test_path)
        if not USE_PRIVATE_SET:
            test = test.sample(fraction=1.0, shuffle=True, seed=int.from_bytes(os.urandom(4), "big"))
        for row in test.iter_slices(n_rows=1):
            # `predict(*row)`: iterating a frame gives its columns, so predict gets one-row Series.
            yield row, row.select("id")

    def competition_specific_validation(self, prediction, row_ids, data_batch) -> None:
        pass  # AIMO3's is empty: the answer's column and values are the scorer's to refuse


def main(argv: list[str]) -> int:
    """The rerun's gateway, in its own process: `python -m kaggle_evaluation.aimo_3_gateway TEST_CSV`."""
    try:
        AIMO3Gateway(tuple(argv[:1]) or None).run()
    except GatewayRuntimeError as exc:
        print(f"gateway error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
