"""`docker compose up --scale sandbox=3`: compose.yaml lets the sandbox scale and the solver balance over
every replica by name. No Docker engine or image here: compose.yaml is checked statically (its schema in
tests/docker), and the name-based balancing it relies on is run for real against servers on loopback with
a stand-in for Docker's DNS."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sandbox_service import SandboxClient
from sandbox_service.targets import normalize_target
from sandbox_service.workers import resolve_workers

from .conftest import stop_all, wait_or_skip
from .dns_double import DnsDouble
from .test_replicas import calls_answered

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SOLVERS = ["solver", "solver-cpu"]


def test_the_sandbox_can_be_scaled():
    sandbox = COMPOSE["services"]["sandbox"]
    for fixed in ("container_name", "ports", "hostname"):
        assert fixed not in sandbox, f"{fixed} would make --scale sandbox=N clash"
    assert "sandbox-uids:/run/aimo-sandbox-uids" in sandbox["volumes"]  # one lock folder for all replicas
    assert "sandbox-uids" in COMPOSE["volumes"]
    workers = sandbox["environment"]["AIMO_SANDBOX_WORKERS"]
    assert resolve_workers(workers.split(":-")[1].rstrip("}")) == 1


@pytest.mark.parametrize("service", SOLVERS)
def test_the_solver_balances_over_every_sandbox_replica_by_name(service):
    argv = COMPOSE["services"][service]["command"]
    target = argv[argv.index("--sandbox") + 1]
    assert normalize_target(target) == target
    assert target == f"dns:///sandbox:{COMPOSE['services']['sandbox']['expose'][0]}"
    assert set(COMPOSE["services"][service]["networks"]) & set(COMPOSE["services"]["sandbox"]["networks"])


@pytest.mark.nsjail
def test_a_name_with_several_addresses_is_balanced_over_all_of_them():
    """Three servers on 127.0.0.1-3, one port; a DNS name answering with the three; calls reach all three."""
    from sandbox_service.spawn import ServerProcess, free_port

    port = free_port()
    servers = []
    for host in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
        server = ServerProcess("--isolation", "nsjail", "--pool-size", "1", "--address", f"{host}:{port}")
        server.address, server.port = f"{host}:{port}", port  # the flag given last is the one that counts
        servers.append(server)
    dns = DnsDouble(["127.0.0.1", "127.0.0.2", "127.0.0.3"])
    try:
        wait_or_skip(servers)
        before = [calls_answered(s) for s in servers]
        with SandboxClient(f"dns://127.0.0.1:{dns.port}/sandbox:{port}") as client:
            for _ in range(30):
                assert client.execute("6 * 7").display == "42"
        taken = [calls_answered(s) - b for s, b in zip(servers, before, strict=True)]
    finally:
        dns.close()
        stop_all(servers)
    assert dns.queries >= 1
    assert sum(taken) == 30 and min(taken) >= 3, taken
