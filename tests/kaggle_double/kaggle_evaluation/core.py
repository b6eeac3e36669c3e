"""The rules and the transport of the double, written from the public `kaggle_evaluation` source (AIMO3).

What the real package does, and so what this double does:

- `InferenceServer(*listeners)` refuses, at construction, anything that is not a plain function
  (`types.FunctionType`: a bound method or a `functools.partial` is refused) and any lambda, with the
  real messages; the gateway asks for a listener by its `__name__`, so the function must be named
  `predict`.
- The listener runs on the server's single worker thread, behind gRPC on loopback: its arguments and its
  return value are serialized (only some types cross; polars frames as Arrow IPC), and an exception in
  it, or a return value that cannot be serialized, fails the submission (SERVER_RAISED_EXCEPTION).
- The client's first call waits up to STARTUP_LIMIT_SECONDS for the server to listen (the model may
  load in that first call, which has no deadline); every later call has the gateway's response timeout.
- Every prediction is validated: None, or a type that is neither a primitive nor a polars/pandas frame
  or series, or a row count other than the batch's, is an INVALID_SUBMISSION; the predictions are then
  concatenated and written to `submission.parquet` with the gateway's row ids.

What the real AIMO3 gateway does not check itself (its competition-specific validation is empty) but
Kaggle's scorer refuses, the `answer` column and its values, is checked by the tests' scorer
(`tests/inference/kaggle_scoring.py`), so that a submission is judged in full.
"""

from __future__ import annotations

import base64
import enum
import io
import json
import os
import time
import traceback
import types
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import polars as pl

STARTUP_LIMIT_SECONDS = float(os.environ.get("KAGGLE_DOUBLE_STARTUP_LIMIT_S", 15 * 60))
DEFAULT_DEADLINE_SECONDS = 60 * 60
# The double listens on a free loopback port (the real one takes 50051, then 60053-60062); on a rerun it
# writes the port to the file this variable names, where the gateway, in another process, finds it.
PORT_FILE_VARIABLE = "KAGGLE_DOUBLE_PORT_FILE"
_METHOD = "/kaggle_evaluation_double.Relay/Send"
_POLARS_DENIED = {pl.Object, pl.Unknown, pl.Enum}
_import_time = time.time()


class GatewayRuntimeErrorType(enum.Enum):
    """The real gateway's error kinds (the user sees the name; the numbers are the real ones)."""

    UNSPECIFIED = 0
    SERVER_NEVER_STARTED = 1
    SERVER_CONNECTION_FAILED = 2
    SERVER_RAISED_EXCEPTION = 3
    SERVER_MISSING_ENDPOINT = 4
    GATEWAY_RAISED_EXCEPTION = 5
    INVALID_SUBMISSION = 6
    GRPC_DEADLINE_EXCEEDED = 7


class GatewayRuntimeError(Exception):
    def __init__(self, error_type: GatewayRuntimeErrorType, error_details: str | None = None) -> None:
        super().__init__(f"{error_type.name}: {error_details}" if error_details else error_type.name)
        self.error_type = error_type
        self.error_details = error_details


def check_listeners(listeners: tuple) -> None:
    """The real `define_server`'s checks, with its messages."""
    if not listeners:
        raise ValueError("Must pass at least one endpoint listener, e.g. `predict`")
    for func in listeners:
        if not isinstance(func, types.FunctionType):
            raise ValueError(f"Endpoint listeners passed to `serve` must be functions, got {type(func)}")
        if func.__name__ == "<lambda>":
            raise ValueError("Functions passed as endpoint listeners must be named")


# --- what crosses the wire ---------------------------------------------------------------------------

def _frame_bytes(frame: pl.DataFrame) -> str:
    banned = {dtype.base_type() for dtype in frame.dtypes} & _POLARS_DENIED
    if banned:
        raise TypeError(f"Unsupported Polars data type(s): {banned}")
    buffer = io.BytesIO()
    frame.write_ipc_stream(buffer, compression="lz4")
    return base64.b64encode(buffer.getvalue()).decode()


def _encode(value: Any) -> dict:
    """The relay's allow-list of types; anything else is a TypeError with the real message."""
    try:
        import numpy as np
    except ImportError:  # numpy comes with polars' users; without it no numpy value can be returned
        np = None
    if np is not None and isinstance(value, np.generic):
        if not isinstance(value, np.number | np.bool_):
            raise TypeError(f"Type {type(value)} not supported for KaggleEvaluation.")
        return {"numpy_scalar": value.item(), "dtype": value.dtype.str}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": value}
    if isinstance(value, float):
        return {"float": value}
    if value is None:
        return {"none": True}
    if isinstance(value, list | tuple):
        return {type(value).__name__: [_encode(v) for v in value]}
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"KaggleEvaluation only supports dicts with keys of type str, found {type(key)}.")
        return {"dict": {k: _encode(v) for k, v in value.items()}}
    if isinstance(value, pl.DataFrame):
        return {"polars_dataframe": _frame_bytes(value)}
    if isinstance(value, pl.Series):
        return {"polars_series": _frame_bytes(value.to_frame())}
    if type(value).__module__.startswith("pandas") and type(value).__name__ in ("DataFrame", "Series"):
        frame = pl.from_pandas(value.to_frame() if type(value).__name__ == "Series" else value)
        return {f"pandas_{type(value).__name__.lower()}": _frame_bytes(frame)}
    if np is not None and isinstance(value, np.ndarray):
        return {"numpy_array": value.tolist(), "dtype": value.dtype.str}
    raise TypeError(f"Type {type(value)} not supported for KaggleEvaluation.")


def _decode(payload: dict) -> Any:
    (kind, value), *_ = payload.items()
    if kind in ("str", "bool", "int", "float"):
        return value
    if kind == "none":
        return None
    if kind in ("list", "tuple"):
        items = [_decode(v) for v in value]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {k: _decode(v) for k, v in value.items()}
    if kind in ("polars_dataframe", "polars_series", "pandas_dataframe", "pandas_series"):
        frame = pl.read_ipc_stream(io.BytesIO(base64.b64decode(value)))
        if kind.startswith("pandas"):
            frame = frame.to_pandas()
            return frame[frame.columns[0]] if kind == "pandas_series" else frame
        return frame.to_series(0) if kind == "polars_series" else frame
    if kind in ("numpy_scalar", "numpy_array"):
        import numpy as np

        return np.dtype(payload["dtype"]).type(value) if kind == "numpy_scalar" else np.array(
            value, dtype=payload["dtype"])
    raise TypeError(f"Found unknown Payload case {kind}")


def encode_request(name: str, args: tuple) -> bytes:
    return json.dumps({"name": name, "args": [_encode(a) for a in args]}).encode()


# --- the server --------------------------------------------------------------------------------------

class _Servicer:
    def __init__(self, listeners: tuple) -> None:
        self.listeners = {func.__name__: func for func in listeners}

    def send(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        # An exception raised here fails the call as gRPC fails it for the real server: status UNKNOWN,
        # "Exception calling application: <message>", which the gateway reports as the server's.
        message = json.loads(request)
        if message["name"] not in self.listeners:
            raise NotImplementedError(f"No listener for {message['name']} was registered.")
        args = [_decode(a) for a in message["args"]]
        return json.dumps(_encode(self.listeners[message["name"]](*args))).encode()


def define_server(*listeners: Callable) -> grpc.Server:
    check_listeners(listeners)
    # One worker, as the real server: the listener is never called twice at once, and never on the
    # thread that built it.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    handler = grpc.method_handlers_generic_handler(
        "kaggle_evaluation_double.Relay", {"Send": grpc.unary_unary_rpc_method_handler(_Servicer(listeners).send)})
    server.add_generic_rpc_handlers((handler,))
    server.port = server.add_insecure_port("127.0.0.1:0")
    return server


# --- the client ----------------------------------------------------------------------------------------

class Client:
    """The gateway's side: the first call waits for the server to listen, later calls have a deadline."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port
        self.endpoint_deadline_seconds = DEFAULT_DEADLINE_SECONDS
        self.startup_limit_seconds = STARTUP_LIMIT_SECONDS
        self._channel: grpc.Channel | None = None
        self._connected = False

    def _port(self) -> int | None:
        """In one process the server hands its port over; a gateway in another reads the server's port file."""
        if self.port is None and os.path.exists(os.environ.get(PORT_FILE_VARIABLE, "")):
            with open(os.environ[PORT_FILE_VARIABLE]) as f:
                self.port = int(f.read())
        return self.port

    def send(self, name: str, *args) -> Any:
        request = encode_request(name, args)
        if self._connected:
            try:
                response = self._call(request, timeout=self.endpoint_deadline_seconds)
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise GatewayRuntimeError(GatewayRuntimeErrorType.GRPC_DEADLINE_EXCEEDED,
                                              f"no answer within {self.endpoint_deadline_seconds} s") from None
                raise
            return _decode(json.loads(response))
        started = time.monotonic()
        while time.monotonic() - started < self.startup_limit_seconds:
            port = self._port()
            if port is not None:
                try:
                    response = self._call(request, timeout=None, port=port)  # the first call: no deadline
                    self._connected = True
                    return _decode(json.loads(response))
                except grpc.RpcError as exc:
                    if exc.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
            time.sleep(0.1)
        raise GatewayRuntimeError(GatewayRuntimeErrorType.SERVER_NEVER_STARTED,
                                  f"Failed to connect to server after waiting {self.startup_limit_seconds} seconds")

    def _call(self, request: bytes, timeout: float | None, port: int | None = None) -> bytes:
        if self._channel is None or port is not None:
            self.close()
            self._channel = grpc.insecure_channel(f"127.0.0.1:{port or self._port()}")
        return self._channel.unary_unary(_METHOD)(request, timeout=timeout, wait_for_ready=False)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None


# --- the gateway -------------------------------------------------------------------------------------

_FRAME_TYPES = ("DataFrame", "Series")


def _is_frame(value: Any) -> bool:
    return isinstance(value, pl.DataFrame | pl.Series) or (
        type(value).__module__.startswith("pandas") and type(value).__name__ in _FRAME_TYPES)


class BaseGateway:
    """Sends each batch to `predict`, validates what comes back, writes `submission.parquet`."""

    def __init__(self, data_paths: tuple[str, ...] | None = None, port: int | None = None) -> None:
        self.data_paths = data_paths
        self.client = Client(port)
        self.calls: list[dict] = []  # per call: seconds and whether it was the first (for the tests)
        self.out_dir = os.environ.get("KAGGLE_DOUBLE_OUT", ".")

    def set_response_timeout_seconds(self, seconds: float) -> None:
        """Applies from the second call on: the first may load the model."""
        self.timeout_seconds = seconds
        self.client.endpoint_deadline_seconds = seconds

    def unpack_data_paths(self) -> None:
        raise NotImplementedError

    def generate_data_batches(self) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
        raise NotImplementedError

    def competition_specific_validation(self, prediction, row_ids, data_batch) -> None:
        raise NotImplementedError

    def predict(self, *args) -> Any:
        started = time.monotonic()
        try:
            return self.client.send("predict", *args)
        except GatewayRuntimeError:
            raise
        except grpc.RpcError as exc:
            details = exc.details() or ""
            if "No listener for predict" in details:
                raise GatewayRuntimeError(GatewayRuntimeErrorType.SERVER_MISSING_ENDPOINT,
                                          "Server did not register a listener for predict") from None
            if details.startswith("Exception calling application"):
                raise GatewayRuntimeError(GatewayRuntimeErrorType.SERVER_RAISED_EXCEPTION,
                                          details.removeprefix("Exception calling application: ")) from None
            raise GatewayRuntimeError(GatewayRuntimeErrorType.SERVER_CONNECTION_FAILED, str(exc)) from None
        finally:
            self.calls.append({"seconds": time.monotonic() - started, "first": not self.calls})

    @staticmethod
    def validate(prediction: Any, row_ids: pl.DataFrame) -> None:
        """The real competition-agnostic check: a prediction per row id, of a type that has rows."""
        if prediction is None:
            raise GatewayRuntimeError(GatewayRuntimeErrorType.INVALID_SUBMISSION, "No prediction received")
        if isinstance(prediction, int | float | str | bool):
            received = 1
        elif _is_frame(prediction):
            received = len(prediction)
        else:
            raise GatewayRuntimeError(GatewayRuntimeErrorType.INVALID_SUBMISSION,
                                      f"Invalid prediction data type, received: {type(prediction)}")
        if received != len(row_ids):
            raise GatewayRuntimeError(GatewayRuntimeErrorType.INVALID_SUBMISSION,
                                      f"Invalid predictions: expected {len(row_ids)} rows but received {received}")

    def write_submission(self, predictions: list, row_ids: list[pl.DataFrame]) -> str:
        """As the real one: frames concatenated (relaxed), bare values as one unnamed series, which AIMO3
        cannot name (it sets no target column), the row ids written over the `id` column. Series go
        through the same relaxed concatenation, which polars refuses for series (a ValueError)."""
        if isinstance(predictions[0], pl.DataFrame | pl.Series):
            try:
                submission = pl.concat(predictions, how="vertical_relaxed")
            except pl.exceptions.SchemaError:
                raise GatewayRuntimeError(GatewayRuntimeErrorType.INVALID_SUBMISSION,
                                          "Inconsistent prediction types") from None
            except pl.exceptions.ComputeError:
                raise GatewayRuntimeError(GatewayRuntimeErrorType.INVALID_SUBMISSION,
                                          "Inconsistent prediction column counts") from None
        elif _is_frame(predictions[0]):
            submission = pl.concat([pl.from_pandas(p) for p in predictions], how="vertical_relaxed")
        else:
            submission = pl.Series(predictions)
        if isinstance(submission, pl.Series):
            if not submission.name:
                raise GatewayRuntimeError(
                    GatewayRuntimeErrorType.GATEWAY_RAISED_EXCEPTION,
                    "The gateway fields self.target_column_name and/or self.row_id_column_name must be set in "
                    "order to use scalar data_batches or unnamed Pandas/Polars series")
            submission = submission.to_frame()
        ids = pl.concat(row_ids)
        order = ids.columns + [c for c in submission.columns if c not in ids.columns]
        path = os.path.join(self.out_dir, "submission.parquet")
        submission.with_columns(ids).select(order).write_parquet(path)
        return path

    def run(self) -> None:
        predictions, row_ids = [], []
        try:
            self.unpack_data_paths()
            for data_batch, ids in self.generate_data_batches():
                prediction = self.predict(*data_batch)
                self.validate(prediction, ids)
                self.competition_specific_validation(prediction, ids, data_batch)
                predictions.append(prediction)
                row_ids.append(ids)
            self.write_submission(predictions, row_ids)
        except GatewayRuntimeError:
            raise
        except Exception as exc:  # noqa: BLE001 (as the real one: any other failure is the gateway's)
            raise GatewayRuntimeError(GatewayRuntimeErrorType.GATEWAY_RAISED_EXCEPTION,
                                      "".join(traceback.format_exception(exc))) from None
        finally:
            self.client.close()
            with open(os.path.join(self.out_dir, "gateway_calls.json"), "w") as f:
                json.dump(self.calls, f)


class InferenceServer:
    """What the notebook builds: `serve()` on the rerun, `run_local_gateway()` to try it locally."""

    def __init__(self, *endpoint_listeners: Callable) -> None:
        self.server = define_server(*endpoint_listeners)
        self.port = self.server.port
        self.gateway: BaseGateway | None = None

    def serve(self) -> None:
        self.server.start()
        port_file = os.environ.get(PORT_FILE_VARIABLE)
        if port_file:
            with open(port_file + ".tmp", "w") as f:
                f.write(str(self.port))
            os.replace(port_file + ".tmp", port_file)
        if os.getenv("KAGGLE_IS_COMPETITION_RERUN") is not None:
            self.server.wait_for_termination()  # as the real one: the rerun's gateway stops the container

    def _get_gateway_for_test(self, data_paths, port: int) -> BaseGateway:
        raise NotImplementedError

    def run_local_gateway(self, data_paths: tuple[str, ...] | None = None) -> None:
        elapsed = time.time() - _import_time
        if elapsed > STARTUP_LIMIT_SECONDS:
            import warnings

            warnings.warn(f"{int(elapsed)} seconds elapsed before server startup. This exceeds the startup time "
                          f"limit of {int(STARTUP_LIMIT_SECONDS)} seconds that the gateway will enforce during "
                          "the rerun on the hidden test set.", RuntimeWarning, stacklevel=2)
        self.server.start()
        try:
            self.gateway = self._get_gateway_for_test(data_paths, self.port)
            self.gateway.run()
        finally:
            self.server.stop(0)

