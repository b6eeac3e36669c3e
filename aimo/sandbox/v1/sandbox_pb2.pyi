from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Display(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISPLAY_PRETTY: _ClassVar[Display]
    DISPLAY_REPR: _ClassVar[Display]
    DISPLAY_NONE: _ClassVar[Display]

class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_UNSPECIFIED: _ClassVar[Status]
    STATUS_OK: _ClassVar[Status]
    STATUS_ERROR: _ClassVar[Status]
    STATUS_TIMEOUT: _ClassVar[Status]
    STATUS_MEMORY_EXCEEDED: _ClassVar[Status]
    STATUS_OUTPUT_LIMIT_EXCEEDED: _ClassVar[Status]
    STATUS_CRASHED: _ClassVar[Status]
    STATUS_REJECTED: _ClassVar[Status]
DISPLAY_PRETTY: Display
DISPLAY_REPR: Display
DISPLAY_NONE: Display
STATUS_UNSPECIFIED: Status
STATUS_OK: Status
STATUS_ERROR: Status
STATUS_TIMEOUT: Status
STATUS_MEMORY_EXCEEDED: Status
STATUS_OUTPUT_LIMIT_EXCEEDED: Status
STATUS_CRASHED: Status
STATUS_REJECTED: Status

class Limits(_message.Message):
    __slots__ = ("timeout_ms", "memory_bytes", "cpu_seconds", "max_processes", "max_file_bytes", "max_output_bytes")
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_PROCESSES_FIELD_NUMBER: _ClassVar[int]
    MAX_FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    timeout_ms: int
    memory_bytes: int
    cpu_seconds: int
    max_processes: int
    max_file_bytes: int
    max_output_bytes: int
    def __init__(self, timeout_ms: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., cpu_seconds: _Optional[int] = ..., max_processes: _Optional[int] = ..., max_file_bytes: _Optional[int] = ..., max_output_bytes: _Optional[int] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("code", "limits", "seed", "display")
    CODE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_FIELD_NUMBER: _ClassVar[int]
    code: str
    limits: Limits
    seed: int
    display: Display
    def __init__(self, code: _Optional[str] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., seed: _Optional[int] = ..., display: _Optional[_Union[Display, str]] = ...) -> None: ...

class SessionOpen(_message.Message):
    __slots__ = ("limits", "seed")
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    limits: Limits
    seed: int
    def __init__(self, limits: _Optional[_Union[Limits, _Mapping]] = ..., seed: _Optional[int] = ...) -> None: ...

class Cell(_message.Message):
    __slots__ = ("code", "timeout_ms", "max_output_bytes", "display")
    CODE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_FIELD_NUMBER: _ClassVar[int]
    code: str
    timeout_ms: int
    max_output_bytes: int
    display: Display
    def __init__(self, code: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., max_output_bytes: _Optional[int] = ..., display: _Optional[_Union[Display, str]] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("open", "cell")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    CELL_FIELD_NUMBER: _ClassVar[int]
    open: SessionOpen
    cell: Cell
    def __init__(self, open: _Optional[_Union[SessionOpen, _Mapping]] = ..., cell: _Optional[_Union[Cell, _Mapping]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("type", "message", "traceback")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    traceback: str
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ..., traceback: _Optional[str] = ...) -> None: ...

class ExecuteResult(_message.Message):
    __slots__ = ("status", "stdout", "stderr", "display", "stdout_truncated", "stderr_truncated", "error", "wall_ms", "cpu_ms", "peak_memory_bytes", "state_rolled_back", "cell_index", "message")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_FIELD_NUMBER: _ClassVar[int]
    STDOUT_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    STDERR_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WALL_MS_FIELD_NUMBER: _ClassVar[int]
    CPU_MS_FIELD_NUMBER: _ClassVar[int]
    PEAK_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    STATE_ROLLED_BACK_FIELD_NUMBER: _ClassVar[int]
    CELL_INDEX_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    status: Status
    stdout: str
    stderr: str
    display: str
    stdout_truncated: bool
    stderr_truncated: bool
    error: Error
    wall_ms: float
    cpu_ms: float
    peak_memory_bytes: int
    state_rolled_back: bool
    cell_index: int
    message: str
    def __init__(self, status: _Optional[_Union[Status, str]] = ..., stdout: _Optional[str] = ..., stderr: _Optional[str] = ..., display: _Optional[str] = ..., stdout_truncated: _Optional[bool] = ..., stderr_truncated: _Optional[bool] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., wall_ms: _Optional[float] = ..., cpu_ms: _Optional[float] = ..., peak_memory_bytes: _Optional[int] = ..., state_rolled_back: _Optional[bool] = ..., cell_index: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SandboxInfo(_message.Message):
    __slots__ = ("isolation", "isolation_detail", "server_version", "python_version", "module_versions", "preloaded_modules", "prelude", "default_limits", "max_limits", "pool_size", "zygotes_ready", "sessions_open", "max_sessions")
    class ModuleVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_DETAIL_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODULE_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    PRELOADED_MODULES_FIELD_NUMBER: _ClassVar[int]
    PRELUDE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_LIMITS_FIELD_NUMBER: _ClassVar[int]
    MAX_LIMITS_FIELD_NUMBER: _ClassVar[int]
    POOL_SIZE_FIELD_NUMBER: _ClassVar[int]
    ZYGOTES_READY_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_OPEN_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    isolation: str
    isolation_detail: str
    server_version: str
    python_version: str
    module_versions: _containers.ScalarMap[str, str]
    preloaded_modules: _containers.RepeatedScalarFieldContainer[str]
    prelude: str
    default_limits: Limits
    max_limits: Limits
    pool_size: int
    zygotes_ready: int
    sessions_open: int
    max_sessions: int
    def __init__(self, isolation: _Optional[str] = ..., isolation_detail: _Optional[str] = ..., server_version: _Optional[str] = ..., python_version: _Optional[str] = ..., module_versions: _Optional[_Mapping[str, str]] = ..., preloaded_modules: _Optional[_Iterable[str]] = ..., prelude: _Optional[str] = ..., default_limits: _Optional[_Union[Limits, _Mapping]] = ..., max_limits: _Optional[_Union[Limits, _Mapping]] = ..., pool_size: _Optional[int] = ..., zygotes_ready: _Optional[int] = ..., sessions_open: _Optional[int] = ..., max_sessions: _Optional[int] = ...) -> None: ...
