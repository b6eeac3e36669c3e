"""A sandbox for model-written Python: warm jailed interpreters behind gRPC, or in-process.

    from sandbox_service import SandboxClient, LocalSandbox
"""

__version__ = "0.1.0"

from .client import AsyncSandboxClient, SandboxClient, SandboxError
from .local import LocalSandbox
from .result import ExecResult

__all__ = ["AsyncSandboxClient", "ExecResult", "LocalSandbox", "SandboxClient", "SandboxError", "__version__"]
