"""What a submission builds: `AIMO3InferenceServer(predict)`, then `serve()` or `run_local_gateway((csv,))`."""

from __future__ import annotations

from kaggle_evaluation.aimo_3_gateway import AIMO3Gateway
from kaggle_evaluation.core import InferenceServer


class AIMO3InferenceServer(InferenceServer):
    def _get_gateway_for_test(self, data_paths, port: int) -> AIMO3Gateway:
        return AIMO3Gateway(data_paths, port)
