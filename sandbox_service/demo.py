"""python -m sandbox_service.demo: start the service on loopback and run a few cells through the client."""

from __future__ import annotations

import sys

from .client import SandboxClient
from .spawn import ServerProcess

STATELESS = [
    "sympy.factor(x**20 - 1) if (x := sympy.Symbol('x')) else None",
    "mp.dps = 60\nprint(mp.pi)",
    "pow(3, 10**18, 10**9 + 7)",
    "1 / 0",
    "while True:\n    pass",
]
SESSION = ["total = sum(range(10**6))", "total % 99991", "del total\nwhile True:\n    pass", "total"]


def show(code: str, result) -> None:
    print("  >>> " + code.replace("\n", "\n  ... "))
    for text in (result.stdout, result.display):
        if text:
            print("  " + text.rstrip().replace("\n", "\n  "))
    if result.error:
        print(f"  {result.error['type']}: {result.error['message']}")
    note = f" ({result.message})" if result.message else ""
    print(f"  [{result.status}, {result.wall_ms:.1f} ms{', state rolled back' if result.state_rolled_back else ''}]"
          f"{note}\n")


def main() -> None:
    isolation = sys.argv[1] if len(sys.argv) > 1 else "auto"
    server = ServerProcess("--isolation", isolation, "--metrics-port", "0")
    try:
        server.wait_serving()
        with SandboxClient(server.address) as client:
            info = client.info()
            print(f"sandbox on {server.address}: isolation {info.isolation} - {info.isolation_detail}\n")
            print("Stateless calls (each starts from a fresh interpreter with the prelude):\n")
            for code in STATELESS:
                show(code, client.execute(code, timeout_ms=500))
            print("A session (state kept across cells; a cell that times out is rolled back):\n")
            with client.session() as session:
                for code in SESSION:
                    show(code, session.run(code, timeout_ms=500))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
