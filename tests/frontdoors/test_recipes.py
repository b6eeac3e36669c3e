"""The README's recipes for other agents, run as written: its `aimo sandbox mcp|http` lines start the front
doors (through the `aimo` CLI), and each `# recipe:` block runs in its own interpreter against them and must
print what its comments say. Only the ports and the sandbox's address are swapped for free ones."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from sandbox_service.frontdoors.spawn import FrontDoorProcess
from sandbox_service.spawn import ROOT

pytestmark = pytest.mark.nsjail

SECTION = "## The sandbox from other agents"
README_SANDBOX, README_MCP_PORT, README_HTTP_PORT = "127.0.0.1:50071", "8765", "8080"


def section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + 1)
    return text[start:end]


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(), re.S)


def recipes() -> dict[str, str]:
    return {block.split("\n", 1)[0].removeprefix("# recipe: "): block for block in code_blocks("python")
            if block.startswith("# recipe: ")}


def door_command(door: str) -> list[str]:
    """The README's `aimo sandbox <door> ...` line, as arguments after `aimo`."""
    for block in code_blocks("bash"):
        for line in block.splitlines():
            words = shlex.split(line.split("#")[0].rstrip(" &"))
            if words[:3] == [".venv/bin/aimo", "sandbox", door]:
                return words[1:]
    raise AssertionError(f"no 'aimo sandbox {door}' line in the README's section")


def cli_door(args: list[str], sandbox_address: str, readme_port: str) -> FrontDoorProcess:
    """A front door started by the README's own command line, through `python -m inference.cli`."""
    def command(port: int) -> list[str]:
        swapped = [sandbox_address if a == README_SANDBOX else str(port) if a == readme_port else a for a in args]
        return [sys.executable, "-m", "inference.cli", *swapped]

    return FrontDoorProcess(args[1], command=command)


@pytest.fixture(scope="module")
def readme_doors(nsjail_server):
    mcp = cli_door(door_command("mcp"), nsjail_server.address, README_MCP_PORT)
    http = cli_door(door_command("http"), nsjail_server.address, README_HTTP_PORT)
    try:
        yield mcp.wait_ready(), http.wait_ready()
    finally:
        mcp.stop()
        http.stop()


def test_the_section_has_a_recipe_per_client():
    assert set(recipes()) == {"vllm", "mcp-agent", "verl", "nemo-skills"}
    for heading in ("### Use it from vLLM", "### From an MCP agent", "### From verl", "### From NeMo-Skills"):
        assert heading in section()


@pytest.mark.parametrize("name", ["vllm", "mcp-agent", "verl", "nemo-skills"])
def test_recipe_prints_what_it_says(name, readme_doors):
    mcp, http = readme_doors
    code = recipes()[name]
    expected = [line.split("#")[-1].strip() for line in code.splitlines() if line.lstrip().startswith("print(")]
    code = code.replace(f":{README_MCP_PORT}", f":{mcp.port}").replace(f":{README_HTTP_PORT}", f":{http.port}")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    printed = [line.strip() for line in run.stdout.splitlines() if line.strip()]
    assert printed == expected
