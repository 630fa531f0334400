"""Kustomize manifests: every overlay renders, validates against the Kubernetes schemas, passes checkov,
and keeps the security properties the design promises (restricted PSS, least-privilege RBAC, default-deny
network policy, secret templates without values).

Real: kustomize v5 (kubectl kustomize) renders each overlay; kubernetes-validate checks each object
against the OpenAPI schemas of two Kubernetes releases in strict mode (unknown fields are errors); checkov
3.3 runs its Kubernetes policies offline. Not covered (no cluster here): admission itself (Pod Security,
quota, RBAC evaluation by an API server) and whether a CNI enforces the NetworkPolicies.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from platform_tools import INSTALL, MANIFESTS, OVERLAYS, PROFILES_DIR, failed_checks_text, run, run_checkov

from kubealign.profiles import STAGES, cpu_cores, load_profile, memory_bytes

# The oldest Kubernetes minor still in the big clouds' standard support, and the newest schema shipped.
K8S_VERSIONS = ("1.31.0", "latest")
PAIRED_PROFILE = {"s3-minio": "kind-cpu", "gcs": "gke-gpu", "s3-aws": "eks-gpu"}
FORBIDDEN_RESOURCES = {"pods/exec", "pods/attach", "pods/portforward", "nodes/proxy", "*"}


@pytest.fixture(scope="module")
def rendered(kubectl: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """Overlay name -> its rendered objects; the YAML is also written to files for checkov."""
    out_dir = tmp_path_factory.mktemp("rendered")
    result = {}
    for overlay in OVERLAYS:
        proc = run([kubectl, "kustomize", str(MANIFESTS / "overlays" / overlay)])
        assert proc.returncode == 0, f"kustomize failed for overlays/{overlay}:\n{proc.stderr}"
        (out_dir / f"{overlay}.yaml").write_text(proc.stdout)
        result[overlay] = [d for d in yaml.safe_load_all(proc.stdout) if d]
    result["_dir"] = out_dir
    return result


def objects(rendered: dict, overlay: str, kind: str) -> list[dict]:
    return [o for o in rendered[overlay] if o["kind"] == kind]


def one(rendered: dict, overlay: str, kind: str, name: str) -> dict:
    found = [o for o in objects(rendered, overlay, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"overlays/{overlay}: expected one {kind}/{name}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_the_expected_objects(rendered: dict, overlay: str) -> None:
    kinds = {o["kind"] for o in rendered[overlay]}
    assert {
        "Namespace", "ServiceAccount", "Role", "RoleBinding", "Secret", "ConfigMap", "NetworkPolicy",
        "ResourceQuota", "LimitRange", "PriorityClass",
    } <= kinds
    one(rendered, overlay, "ServiceAccount", "kubealign-pipeline-runner")
    one(rendered, overlay, "PriorityClass", "kubealign-training")
    for obj in rendered[overlay]:
        if obj["kind"] not in ("Namespace", "PriorityClass"):
            assert obj["metadata"].get("namespace") == "kubealign", f"{obj['kind']}/{obj['metadata']['name']}"


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_validate_against_kubernetes_schemas(rendered: dict, overlay: str, version: str) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail(f"kubernetes-validate is not installed; missing install step: {INSTALL['kubernetes-validate']}")
    target = kubernetes_validate.latest_version() if version == "latest" else version
    errors = []
    for obj in rendered[overlay]:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, target, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{name}: {'.'.join(map(str, e.path))}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            errors.append(f"{name}: {e.message}")
    assert not errors, f"overlays/{overlay} against Kubernetes {target}:\n" + "\n".join(errors)


def test_checkov_finds_no_failures(rendered: dict, checkov: str) -> None:
    report = run_checkov(checkov, rendered["_dir"], "kubernetes")
    summary = report["summary"]
    assert summary["failed"] == 0, "checkov failures:\n" + failed_checks_text(report)
    assert summary["parsing_errors"] == 0
    # Skips must be listed with a reason in manifests/README.md; there are none today.
    assert summary["skipped"] == 0, "a checkov skip appeared: list it, with its reason, in manifests/README.md"
    assert summary["resource_count"] == sum(len(rendered[o]) for o in OVERLAYS)
    scanned = {Path(c["file_path"]).stem for c in report["results"]["passed_checks"]}
    assert scanned == set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_namespace_enforces_restricted_pod_security(rendered: dict, overlay: str) -> None:
    labels = one(rendered, overlay, "Namespace", "kubealign")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_roles_are_least_privilege(rendered: dict, overlay: str) -> None:
    roles = objects(rendered, overlay, "Role") + objects(rendered, overlay, "ClusterRole")
    assert roles
    for role in roles:
        for rule in role["rules"]:
            where = f"overlays/{overlay} {role['kind']}/{role['metadata']['name']}: {rule}"
            assert not set(rule["resources"]) & FORBIDDEN_RESOURCES, where
            assert "*" not in rule["verbs"] and "*" not in rule.get("apiGroups", []), where
            if "secrets" in rule["resources"]:
                assert rule.get("resourceNames"), f"secrets rule without resourceNames: {where}"
                assert set(rule["verbs"]) == {"get"}, where
            if "pods" in rule["resources"]:
                assert not set(rule["verbs"]) & {"create", "delete", "deletecollection", "update"}, where
    assert not objects(rendered, overlay, "ClusterRoleBinding")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_denies_by_default_and_allows_dns(rendered: dict, overlay: str) -> None:
    policies = objects(rendered, overlay, "NetworkPolicy")
    deny = [
        p for p in policies
        if p["spec"]["podSelector"] == {} and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress") and not p["spec"].get("egress")
    ]
    assert deny, f"overlays/{overlay}: no default-deny NetworkPolicy"
    assert not any(p["spec"].get("ingress") for p in policies), "nothing should be allowed in"
    dns = [
        rule for p in policies for rule in p["spec"].get("egress", [])
        if any(peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
               == "kube-system" for peer in rule.get("to", []))
    ]
    assert dns and {(q["protocol"], q["port"]) for q in dns[0]["ports"]} == {("UDP", 53), ("TCP", 53)}


def _egress_ports(rendered: dict, overlay: str) -> dict[int, list[dict]]:
    ports: dict[int, list[dict]] = {}
    for p in objects(rendered, overlay, "NetworkPolicy"):
        for rule in p["spec"].get("egress", []):
            for q in rule.get("ports", []):
                ports.setdefault(q["port"], []).extend(rule.get("to", []))
    return ports


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_allows_object_store_and_wandb(rendered: dict, overlay: str) -> None:
    ports = _egress_ports(rendered, overlay)
    https = [peer["ipBlock"] for peer in ports[443] if "ipBlock" in peer]
    assert any(b["cidr"] == "0.0.0.0/0" and "169.254.0.0/16" in b.get("except", []) for b in https), (
        "W&B and cloud object stores need HTTPS out, with the cloud metadata range excluded"
    )
    if overlay == "s3-minio":
        [minio] = ports[9000]
        assert minio["podSelector"]["matchLabels"] == {"app": "minio"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secret_templates_hold_keys_but_no_values(rendered: dict, overlay: str) -> None:
    secrets = objects(rendered, overlay, "Secret")
    assert {s["metadata"]["name"] for s in secrets} >= {"kubealign-wandb"}
    for s in secrets:
        assert "data" not in s, f"{s['metadata']['name']}: base64 data in a template"
        assert s["stringData"] and all(v == "" for v in s["stringData"].values()), s["metadata"]["name"]


EXPECTED_ROOT = {"s3-minio": "s3://", "gcs": "gs://", "s3-aws": "s3://"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kfp_launcher_points_at_the_overlays_store(rendered: dict, overlay: str) -> None:
    data = one(rendered, overlay, "ConfigMap", "kfp-launcher")["data"]
    assert data["defaultPipelineRoot"].startswith(EXPECTED_ROOT[overlay])
    providers = yaml.safe_load(data["providers"])
    scheme = EXPECTED_ROOT[overlay].removesuffix("://")
    credentials = providers[scheme]["default"]["credentials"]
    if credentials.get("fromEnv"):
        assert "kubealign-object-store" not in {s["metadata"]["name"] for s in objects(rendered, overlay, "Secret")}
        return
    ref = credentials["secretRef"]
    secret = one(rendered, overlay, "Secret", ref["secretName"])
    assert {ref["accessKeyKey"], ref["secretKeyKey"]} <= set(secret["stringData"])
    readable = {
        name for role in objects(rendered, overlay, "Role") for rule in role["rules"]
        if "secrets" in rule["resources"] for name in rule["resourceNames"]
    }
    assert ref["secretName"] in readable, "the launcher's ServiceAccount must be able to get the secretRef"
    if overlay == "s3-minio":
        assert providers["s3"]["default"]["endpoint"].startswith("minio-service.kubeflow")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_paired_profile_fits_the_overlay(rendered: dict, overlay: str) -> None:
    """Every Secret key, PVC and resource size the paired profile asks for exists in / fits the overlay."""
    profile = load_profile(PROFILES_DIR / f"{PAIRED_PROFILE[overlay]}.yaml")
    secrets = {s["metadata"]["name"]: s for s in objects(rendered, overlay, "Secret")}
    pvcs = {p["metadata"]["name"] for p in objects(rendered, overlay, "PersistentVolumeClaim")}
    [limits] = objects(rendered, overlay, "LimitRange")
    container_max = next(lim["max"] for lim in limits["spec"]["limits"] if lim["type"] == "Container")
    [quota] = objects(rendered, overlay, "ResourceQuota")
    gpu_quota = int(quota["spec"]["hard"]["requests.nvidia.com/gpu"])
    for stage in STAGES:
        s = profile.for_stage(stage)
        for ref in s.secret_env:
            if ref.optional:
                continue
            assert ref.secret_name in secrets, f"{stage}: Secret {ref.secret_name} missing from overlays/{overlay}"
            assert set(ref.mapping) <= set(secrets[ref.secret_name]["stringData"]), stage
        if s.pvc:
            assert s.pvc.name in pvcs, f"{stage}: PVC {s.pvc.name} missing from overlays/{overlay}"
        if s.cpu_limit:
            assert cpu_cores(s.cpu_limit) <= cpu_cores(container_max["cpu"]), stage
        if s.memory_limit:
            assert memory_bytes(s.memory_limit) <= memory_bytes(container_max["memory"]), stage
        assert s.accelerator_count <= gpu_quota, stage
