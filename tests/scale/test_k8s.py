"""deploy/k8s: every manifest, as kustomize renders it, valid against the Kubernetes schemas (offline,
kubernetes-validate's bundled ones), and the properties the design relies on present. No cluster runs here."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sandbox_service.targets import normalize_target

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="it is in requirements/lint.txt")

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
ROOT = K8S.parents[1]
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())  # the oldest with every field used here; the newest
KUSTOMIZATIONS = [K8S / "base", K8S / "overlays" / "gpu"]


def kustomize(folder: Path) -> list[dict]:
    """Render with kustomize (kubectl's built-in one, or a kustomize binary) where there is one; else the
    base's files as they are, after checking its kustomization names every one of them."""
    kubectl, binary = shutil.which("kubectl"), shutil.which("kustomize")
    if kubectl or binary:
        command = [kubectl, "kustomize", str(folder)] if kubectl else [binary, "build", str(folder)]
        return [d for d in yaml.safe_load_all(subprocess.run(command, check=True, capture_output=True,
                                                             text=True, timeout=60).stdout) if d]
    if folder.name != "base":
        pytest.skip("no kustomize here to apply the overlay's patches (the base is checked file by file)")
    listed = yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")
    return [d for name in listed for d in yaml.safe_load_all((folder / name).read_text()) if d]


@pytest.fixture(scope="module", params=KUSTOMIZATIONS, ids=lambda p: p.name)
def rendered(request) -> list[dict]:
    return kustomize(request.param)


def one(docs: list[dict], kind: str, name: str) -> dict:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def test_every_manifest_validates_against_the_kubernetes_schemas(rendered):
    for doc in rendered:
        for version in VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)  # strict: an unknown field is an error


def test_every_file_is_listed_in_its_kustomization():
    for folder in KUSTOMIZATIONS:
        listed = set(yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"])
        here = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
        assert here <= listed, f"{folder}: not in the kustomization: {here - listed}"


def test_the_sandbox_is_probed_through_grpc_health_and_sized(rendered):
    (container,) = one(rendered, "Deployment", "sandbox")["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == 50071, probe  # the native grpc probe, no probe binary
    assert container["readinessProbe"]["grpc"]["service"] == "aimo.sandbox.v1.Sandbox"
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["limits"]["cpu"] and resources["limits"]["memory"]
    env = {e["name"]: e for e in container["env"]}
    assert env["AIMO_SANDBOX_WORKERS"]["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"
    assert env["AIMO_SANDBOX_ISOLATION"]["value"] == "nsjail"


def test_the_sandbox_security_context_is_stated_and_justified(rendered):
    pod = one(rendered, "Deployment", "sandbox")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    context = pod["containers"][0]["securityContext"]
    assert context["privileged"] is True and context["runAsUser"] == 0
    text = (K8S / "base" / "deployment.yaml").read_text()
    assert "Why privileged" in text and "hostUsers" in text  # the reason sits beside the setting
    namespace = one(rendered, "Namespace", "aimo-sandbox")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["uid-locks"]["hostPath"]["path"] == "/run/aimo-sandbox-uids"  # SECURITY.md: shared per host


def test_sandbox_pods_can_open_no_connection(rendered):
    policy = one(rendered, "NetworkPolicy", "sandbox")["spec"]
    assert "Egress" in policy["policyTypes"] and policy["egress"] == []
    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "sandbox"}


def test_a_headless_service_a_disruption_budget_and_an_autoscaler(rendered):
    service = one(rendered, "Service", "sandbox")["spec"]
    assert service["clusterIP"] == "None"  # one DNS record per pod: the client balances, not kube-proxy
    labels = one(rendered, "Deployment", "sandbox")["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    assert one(rendered, "PodDisruptionBudget", "sandbox")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    autoscalers = [d for d in rendered if d["kind"] == "HorizontalPodAutoscaler"]
    if autoscalers:  # the base scales on CPU; the one-node gpu overlay removes it
        (hpa,) = autoscalers
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "sandbox"}
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_the_gpu_overlay_runs_vllm_on_a_gpu_and_the_solver_balances_over_the_sandbox_pods():
    docs = kustomize(K8S / "overlays" / "gpu")
    (vllm,) = one(docs, "Deployment", "vllm")["spec"]["template"]["spec"]["containers"]
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == "1"
    (solver,) = one(docs, "Job", "solver")["spec"]["template"]["spec"]["containers"]
    target = next(a.split("=", 1)[1] for a in solver["args"] if a.startswith("--sandbox="))
    assert normalize_target(target) == target
    service, namespace = one(docs, "Service", "sandbox"), one(docs, "Namespace", "aimo")
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
    assert target == f"dns:///sandbox.{service['metadata']['namespace']}.svc.cluster.local:{port}"
    assert namespace["metadata"]["labels"]["aimo.io/sandbox-client"] == "true"  # the NetworkPolicy lets it in
    assert [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"] == []


def test_the_gpu_overlay_inputs_are_the_compose_stack_s():
    overlay = K8S / "overlays" / "gpu"
    assert filecmp.cmp(overlay / "problems.csv", ROOT / "docker" / "smoke-problems.csv", shallow=False)
    assert filecmp.cmp(overlay / "solver.toml", ROOT / "docker" / "solver.toml", shallow=False)


def test_the_overlay_s_own_files_validate_file_by_file():
    """Also where no kustomize is at hand to render the overlay."""
    overlay = K8S / "overlays" / "gpu"
    resources = yaml.safe_load((overlay / "kustomization.yaml").read_text())["resources"]
    listed = [r for r in resources if r.endswith(".yaml")]
    for name in listed:
        for doc in yaml.safe_load_all((overlay / name).read_text()):
            kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)
