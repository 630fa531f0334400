"""Cluster profiles: loading, error messages, merge rules, and where each setting lands in compiled KFP YAML.

Real: the shipped profile files, pydantic validation, and the kfp 2.17 compiler (with kfp-kubernetes)
compiling a real two-component pipeline to YAML. Nothing runs on a cluster: the test reads the
compiled spec the KFP backend would receive and checks each setting sits where the backend reads it.
(No `from __future__ import annotations` here: KFP reads the components' annotations as real types.)
"""

from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl
from platform_tools import PROFILES_DIR

import kubealign
from kubealign.profiles import (
    DEFAULT_GPU_IMAGE,
    DEFAULT_IMAGE,
    IMAGE_UID,
    NO_CACHE_STAGES,
    STAGES,
    ClusterProfile,
    ProfileError,
    StageSettings,
    configure_task,
    load_profile,
)

SHIPPED = sorted(PROFILES_DIR.glob("*.yaml"))
GPU_STAGES = ("sft", "reward", "dpo", "ppo")


def test_profiles_are_shipped() -> None:
    assert {p.stem for p in SHIPPED} == {"gke-gpu", "eks-gpu", "kind-cpu"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_profile_loads_for_every_stage(path: Path) -> None:
    profile = load_profile(path)
    assert profile.name == path.stem
    for stage in STAGES:
        settings = profile.for_stage(stage)
        assert settings.run_as_user == IMAGE_UID  # the images' USER; the restricted PSS needs non-root
        assert settings.caching is (stage not in NO_CACHE_STAGES)


@pytest.mark.parametrize("name", ["gke-gpu", "eks-gpu"])
def test_gpu_profiles_put_training_on_gpu_nodes(name: str) -> None:
    profile = load_profile(PROFILES_DIR / f"{name}.yaml")
    for stage in GPU_STAGES:
        s = profile.for_stage(stage)
        assert (s.accelerator_type, s.accelerator_count) == ("nvidia.com/gpu", 1), stage
        assert any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in s.tolerations), stage
        assert s.node_selector, f"{stage}: a GPU stage must pick its GPU model with a node selector"
    assert profile.for_stage("merge").accelerator_count == 0
    assert profile.for_stage("data_prep").accelerator_count == 0


def test_gke_selects_gpu_models_by_gke_accelerator_label() -> None:
    profile = load_profile(PROFILES_DIR / "gke-gpu.yaml")
    models = {profile.for_stage(s).node_selector["cloud.google.com/gke-accelerator"] for s in GPU_STAGES}
    assert models == {"nvidia-l4", "nvidia-tesla-a100"}


def test_kind_profile_is_cpu_only_and_small() -> None:
    profile = load_profile(PROFILES_DIR / "kind-cpu.yaml")
    for stage in STAGES:
        s = profile.for_stage(stage)
        assert s.accelerator_type is None and s.accelerator_count == 0 and not s.tolerations
        assert s.image == "cpu"
        assert s.memory_limit in ("4Gi", "6Gi")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_profiles_name_secrets_never_values(path: Path) -> None:
    profile = load_profile(path)
    for stage in STAGES:
        s = profile.for_stage(stage)
        for secret in s.secret_env:
            assert secret.secret_name in {"kubealign-wandb", "kubealign-object-store"}
            assert set(secret.mapping.values()) <= {"WANDB_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
        envs = {e for secret in s.secret_env for e in secret.mapping.values()}
        assert "WANDB_API_KEY" in envs, stage
        assert not set(s.env) & envs, f"{stage}: a secret's variable also has a plain value"


# --- errors name the file and the field ----------------------------------------------------------------

BAD = {
    "count-not-int": ("stages:\n  sft: {accelerator_count: two}\n", "stages.sft.accelerator_count: Input should be a valid integer"),
    "unknown-stage": ("stages:\n  sftt: {}\n", "stages.sftt: unknown stage name"),
    "unknown-field": ("defaults: {colour: red}\n", "defaults.colour: Extra inputs are not permitted"),
    "bad-memory": ("stages:\n  dpo: {memory_limit: 16GB}\n", "stages.dpo.memory_limit: '16GB' is not a memory quantity"),
    "bad-cpu": ("defaults: {cpu_request: two}\n", "defaults.cpu_request: 'two' is not a CPU quantity"),
    "gpu-model-as-type": (
        "stages:\n  sft: {accelerator_type: nvidia-l4, accelerator_count: 1}\n",
        "stages.sft.accelerator_type: 'nvidia-l4' is not a Kubernetes resource name",
    ),
    "toleration": (
        "stages:\n  ppo:\n    tolerations: [{key: nvidia.com/gpu, operator: Exists, value: present}]\n",
        "stages.ppo.tolerations[0]: operator Exists matches any value",
    ),
    "secret-value-in-env": ("defaults:\n  env: {WANDB_API_KEY: abc}\n", "defaults.env: WANDB_API_KEY looks like a credential"),
    "secret-mapping": (
        "defaults:\n  secret_env: [{secret_name: kubealign-wandb, mapping: {WANDB_API_KEY: wandb key}}]\n",
        "defaults.secret_env[0].mapping: environment variable name 'wandb key'",
    ),
    "count-without-type": (
        "stages:\n  sft: {accelerator_count: 2}\n",
        "stages.sft (merged with defaults): accelerator_count is set but accelerator_type is not",
    ),
    "request-over-merged-limit": (
        "defaults: {memory_limit: 8Gi}\nstages:\n  sft: {memory_request: 16Gi}\n",
        "stages.sft (merged with defaults): memory_request 16Gi exceeds memory_limit 8Gi",
    ),
    "defaults-inconsistent": ("defaults: {cpu_request: '4', cpu_limit: 2000m}\n", "defaults: cpu_request 4 exceeds cpu_limit 2000m"),
    "not-a-mapping": ("- just\n- a list\n", "expected a mapping"),
    "bad-yaml": ("stages: {sft: [\n", "not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_profile_error_names_file_and_field(case: str, tmp_path: Path) -> None:
    body, expected = BAD[case]
    path = tmp_path / "manifests" / "profiles" / "gke.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(("name: gke\n" if not body.startswith("-") else "") + body)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    message = str(err.value)
    assert f"{path}: {expected}" in message, message


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="nope.yaml: cannot read"):
        load_profile(tmp_path / "nope.yaml")


# --- merge rules ---------------------------------------------------------------------------------------


def _profile(stages: dict, **defaults) -> ClusterProfile:
    return ClusterProfile.model_validate({"name": "t", "defaults": defaults, "stages": stages})


def test_stage_fields_that_are_set_win_and_the_rest_come_from_defaults() -> None:
    p = _profile(
        {"sft": {"cpu_request": "8", "node_selector": {"pool": "gpu"}, "pvc": None}},
        cpu_request="1", cpu_limit="16", node_selector={"pool": "cpu", "zone": "a"}, retries=2,
        pvc={"name": "cache", "mount_path": "/cache"},
    )
    sft = p.for_stage("sft")
    assert sft.cpu_request == "8" and sft.cpu_limit == "16" and sft.retries == 2
    assert sft.node_selector == {"pool": "gpu"}  # whole fields replace: no key-by-key merge
    assert sft.pvc is None  # an explicit null clears a default
    assert p.for_stage("dpo").node_selector == {"pool": "cpu", "zone": "a"}


def test_publish_and_evaluate_run_uncached_unless_their_own_entry_says_so() -> None:
    p = _profile({"evaluate": {"caching": True}}, caching=True)
    assert p.for_stage("publish").caching is False
    assert p.for_stage("evaluate").caching is True
    assert p.for_stage("sft").caching is True
    assert _profile({}, caching=False).for_stage("sft").caching is False


def test_unknown_stage_is_an_error_everywhere() -> None:
    p = _profile({})
    with pytest.raises(ValueError, match="unknown stage 'train'"):
        p.for_stage("train")
    with pytest.raises(ValueError, match="unknown stage 'train'"):
        configure_task(object(), "train", None)


def test_every_field_is_described() -> None:
    from kubealign.profiles import PvcMount, SecretEnv, Toleration

    for model in (StageSettings, ClusterProfile, Toleration, SecretEnv, PvcMount):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


def test_image_tag_comes_from_the_package_version_and_source_digest() -> None:
    from kubealign.images import current_digest

    tag = f"{kubealign.__version__}-{current_digest()}"  # issue 12: the tag names the code it was built from
    assert DEFAULT_IMAGE == f"ghcr.io/kubealign/trainer-cpu:{tag}"
    assert DEFAULT_GPU_IMAGE == f"ghcr.io/kubealign/trainer-cuda:{tag}"


# --- compiled pipeline: each setting where KFP puts it ---------------------------------------------------


@dsl.component(base_image=DEFAULT_GPU_IMAGE)
def train_step(steps: int) -> str:
    return f"trained for {steps} steps"


@dsl.component(base_image=DEFAULT_IMAGE)
def publish_step(model: str) -> None:
    print(model)


def _compile(profile: ClusterProfile | None, path: Path) -> tuple[dict, dict]:
    @dsl.pipeline(name="platform-test")
    def pipeline(steps: int = 3):
        sft = configure_task(train_step(steps=steps).set_display_name("sft"), "sft", profile)
        merged = configure_task(train_step(steps=0).set_display_name("merge").after(sft), "merge", profile)
        configure_task(publish_step(model=merged.output), "publish", profile)

    compiler.Compiler().compile(pipeline, str(path))
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    spec = docs[0]
    platform = docs[1] if len(docs) > 1 else {}
    return spec, platform


@pytest.fixture(scope="module")
def gke_compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    profile = load_profile(PROFILES_DIR / "gke-gpu.yaml")
    return _compile(profile, tmp_path_factory.mktemp("kfp") / "pipeline.yaml")


def _task(spec: dict, display: str) -> tuple[dict, str]:
    """The DAG task shown as `display`, and the executor label its component runs with."""
    for task in spec["root"]["dag"]["tasks"].values():
        if task["taskInfo"]["name"] == display:
            label = spec["components"][task["componentRef"]["name"]]["executorLabel"]
            return task, label
    raise AssertionError(f"no task {display!r} in {list(spec['root']['dag']['tasks'])}")


def test_compiled_resources_land_in_the_executor_container(gke_compiled: tuple[dict, dict]) -> None:
    spec, _ = gke_compiled
    _, label = _task(spec, "sft")
    container = spec["deploymentSpec"]["executors"][label]["container"]
    res = container["resources"]
    assert res["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert res["accelerator"]["resourceCount"] == "1"
    assert (res["resourceCpuRequest"], res["resourceCpuLimit"]) == ("8", "12")
    assert (res["resourceMemoryRequest"], res["resourceMemoryLimit"]) == ("40Gi", "48Gi")
    assert {"name": "HF_HOME", "value": "/cache/huggingface"} in container["env"]
    assert container["image"] == DEFAULT_GPU_IMAGE  # no image in the profile: the component's base image


def test_compiled_image_override_lands_in_the_container(gke_compiled: tuple[dict, dict]) -> None:
    spec, _ = gke_compiled
    _, label = _task(spec, "merge")
    container = spec["deploymentSpec"]["executors"][label]["container"]
    assert container["image"] == DEFAULT_IMAGE  # profile `image: cpu` on the merge stage
    assert "accelerator" not in container["resources"]
    assert container["resources"]["resourceMemoryLimit"] == "32Gi"


def test_compiled_kubernetes_settings_land_in_the_platform_spec(gke_compiled: tuple[dict, dict]) -> None:
    spec, platform = gke_compiled
    _, label = _task(spec, "sft")
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][label]
    assert k8s["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert k8s["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    [secret] = k8s["secretAsEnv"]
    assert secret["secretName"] == "kubealign-wandb" and secret["optional"] is True
    assert secret["keyToEnv"] == [{"secretKey": "WANDB_API_KEY", "envVar": "WANDB_API_KEY"}]
    [pvc] = k8s["pvcMount"]
    assert pvc["mountPath"] == "/cache"
    assert pvc["pvcNameParameter"]["runtimeValue"]["constant"] == "kubealign-hf-cache"
    assert k8s["securityContext"] == {"runAsUser": str(IMAGE_UID), "runAsGroup": str(IMAGE_UID), "runAsNonRoot": True}
    _, merge_label = _task(spec, "merge")
    merge = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][merge_label]
    assert "nodeSelector" not in merge and "tolerations" not in merge and "pvcMount" not in merge


def test_compiled_retry_and_caching_land_on_the_dag_task(gke_compiled: tuple[dict, dict]) -> None:
    spec, _ = gke_compiled
    sft, _ = _task(spec, "sft")
    assert sft["retryPolicy"]["maxRetryCount"] == 2
    assert sft["retryPolicy"]["backoffDuration"] == "120s"
    assert sft["retryPolicy"]["backoffFactor"] == 2.0
    assert sft["cachingOptions"].get("enableCache") is True
    publish, _ = _task(spec, "publish-step")
    assert publish["retryPolicy"]["maxRetryCount"] == 3
    assert not publish["cachingOptions"].get("enableCache", False)  # KFP omits enableCache: false


def test_without_a_profile_only_caching_is_set(tmp_path: Path) -> None:
    spec, platform = _compile(None, tmp_path / "local.yaml")
    sft, label = _task(spec, "sft")
    assert sft["cachingOptions"].get("enableCache") is True
    assert "retryPolicy" not in sft
    publish, _ = _task(spec, "publish-step")
    assert not publish["cachingOptions"].get("enableCache", False)
    assert "resources" not in spec["deploymentSpec"]["executors"][label]["container"]
    assert not platform  # no kubernetes platform settings at all
