"""Cluster profiles: where each pipeline stage runs, with what resources, secrets and retries.

A profile is a YAML file (see `manifests/profiles/`) read by `load_profile`. Pipelines call
`configure_task(task, stage, profile)` on every task, so no pipeline code names a cloud, a GPU model or
a secret: swapping `gke-gpu.yaml` for `kind-cpu.yaml` moves the same graph from GKE to a laptop cluster.

    defaults:            # applies to every stage
      cpu_request: "2"
    stages:
      sft:               # only the fields written here override the defaults
        accelerator_type: nvidia.com/gpu
        accelerator_count: 1

What lands where in the compiled KFP spec (kfp 2.17, kfp-kubernetes 2.17):
- accelerator, cpu, memory, image, env  -> `deploymentSpec.executors.<exec>.container`
- retries                               -> `root.dag.tasks.<task>.retryPolicy`
- caching                               -> `root.dag.tasks.<task>.cachingOptions`
- node selector, tolerations, secrets,
  PVC, security context                 -> the `platforms.kubernetes` document

The trainer image tag lives here and only here (`DEFAULT_IMAGE`, `DEFAULT_GPU_IMAGE`); components use it
as `base_image`, and a profile's `image` overrides it per stage through `task.set_container_image`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

if TYPE_CHECKING:
    from kfp.dsl import PipelineTask

try:
    from kubealign import __version__ as _VERSION
    from kubealign.images import current_digest, image_tag

    # `<version>-<digest of the source tree>`: the tag names the code an image was built from, so a
    # graph compiled from this tree never runs an image built from another (kubealign.images).
    _TAG = image_tag(_VERSION, current_digest())
except ImportError:  # profiles.py copied on its own (e.g. into a component build context)
    _TAG = "0.1.0"

IMAGE_REGISTRY = "ghcr.io/kubealign"
DEFAULT_IMAGE = f"{IMAGE_REGISTRY}/trainer-cpu:{_TAG}"
DEFAULT_GPU_IMAGE = f"{IMAGE_REGISTRY}/trainer-cuda:{_TAG}"
# The numeric user the trainer images run as (images/*.Dockerfile `USER 10001:10001`).
IMAGE_UID = 10001
# Profiles name the project's own images by alias, so the tag above stays the only place with a version.
IMAGE_ALIASES = {"cpu": DEFAULT_IMAGE, "gpu": DEFAULT_GPU_IMAGE}

StageName = Literal["data_prep", "sft", "merge", "reward", "dpo", "ppo", "evaluate", "safety", "publish"]
STAGES: tuple[str, ...] = get_args(StageName)

# Stages that must run every time unless a profile opts a stage in explicitly: `evaluate` writes the
# run's report to W&B (a cache hit leaves the dashboard without this run), and `publish` copies the
# model to its destination (a cache hit would silently publish nothing).
NO_CACHE_STAGES = frozenset({"evaluate", "publish"})

# What KFP's own setters accept (kfp/dsl/pipeline_task.py); checked here so a bad profile fails at load
# time with its file and field, not at compile time inside kfp.
_CPU = re.compile(r"^([0-9]*[.])?[0-9]+m?$")
_MEMORY = re.compile(r"^[0-9]+(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki)?$")
_MEMORY_FACTOR = {
    "": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_EXTENDED_RESOURCE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_LOOKING = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)
_DURATION = re.compile(r"^[0-9]+(\.[0-9]+)?s$")


def cpu_cores(quantity: str) -> float:
    """CPU quantity ("500m", "2", "1.5") in cores."""
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def memory_bytes(quantity: str) -> int:
    """Memory quantity ("512Mi", "16Gi", "1000") in bytes."""
    number = re.match(r"^[0-9]+", quantity).group(0)
    return int(number) * _MEMORY_FACTOR[quantity[len(number):]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Toleration(_Strict):
    """One pod toleration, as in the Kubernetes PodSpec."""

    key: str | None = Field(None, description="Taint key to tolerate, e.g. nvidia.com/gpu; empty means all keys.")
    operator: Literal["Equal", "Exists"] = Field(
        "Equal", description="Equal matches `value`; Exists matches any value of `key`."
    )
    value: str | None = Field(None, description="Taint value to match when operator is Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect to match; empty means all effects."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.operator == "Exists" and self.value is not None:
            raise ValueError("operator Exists matches any value: remove `value` or use operator Equal")
        if self.key is None and self.operator != "Exists":
            raise ValueError("a toleration without `key` must use operator Exists (it matches every taint)")
        return self


class SecretEnv(_Strict):
    """Environment variables filled from one Kubernetes Secret (by name; no value ever sits here)."""

    secret_name: str = Field(description="Name of the Secret in the run's namespace, e.g. kubealign-wandb.")
    mapping: dict[str, str] = Field(
        min_length=1, description="Secret data key -> environment variable name, e.g. {WANDB_API_KEY: WANDB_API_KEY}."
    )
    optional: bool = Field(
        False, description="If true the pod starts even when the Secret is missing (e.g. W&B stays offline)."
    )

    @field_validator("secret_name")
    @classmethod
    def _secret_name(cls, v: str) -> str:
        if not _DNS_SUBDOMAIN.match(v):
            raise ValueError(f"{v!r} is not a valid Secret name (lowercase letters, digits, '-' and '.')")
        return v

    @field_validator("mapping")
    @classmethod
    def _mapping(cls, v: dict[str, str]) -> dict[str, str]:
        for key, env in v.items():
            if not _SECRET_KEY.match(key):
                raise ValueError(f"secret key {key!r} may hold only letters, digits, '-', '_' and '.'")
            if not _ENV_NAME.match(env):
                raise ValueError(f"environment variable name {env!r} must match [A-Za-z_][A-Za-z0-9_]*")
        return v


class PvcMount(_Strict):
    """An existing PersistentVolumeClaim mounted into the stage's container (e.g. a model cache)."""

    name: str = Field(description="Name of an existing PersistentVolumeClaim in the run's namespace.")
    mount_path: str = Field(description="Absolute path inside the container, e.g. /cache.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _DNS_SUBDOMAIN.match(v):
            raise ValueError(f"{v!r} is not a valid PVC name (lowercase letters, digits, '-' and '.')")
        return v

    @field_validator("mount_path")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"mount_path must be absolute, got {v!r}")
        return v


class StageSettings(_Strict):
    """Platform settings for one stage. In a profile's `stages`, only the fields written override defaults."""

    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="Node labels the pod must match, e.g. {cloud.google.com/gke-accelerator: nvidia-l4}.",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Taints the pod tolerates, e.g. the nvidia.com/gpu taint of GPU pools."
    )
    accelerator_type: str | None = Field(
        None,
        description="Kubernetes extended-resource name the accelerators are requested under, e.g. nvidia.com/gpu "
        "(KFP on Kubernetes turns it into a container resource limit). Choose the GPU model with node_selector.",
    )
    accelerator_count: int = Field(0, ge=0, le=16, description="Accelerators per pod; 0 means none.")
    cpu_request: str | None = Field(None, description="CPU request, e.g. '4' or '500m'.")
    cpu_limit: str | None = Field(None, description="CPU limit, e.g. '8'.")
    memory_request: str | None = Field(None, description="Memory request, e.g. '16Gi'.")
    memory_limit: str | None = Field(None, description="Memory limit, e.g. '32Gi'.")
    image: str | None = Field(
        None,
        description="Container image for this stage: 'cpu' or 'gpu' for the kubealign trainer images of this "
        "version, or a full reference; None keeps the component's base image.",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Plain, non-secret environment variables, e.g. {AWS_ENDPOINT_URL: http://minio...}. "
        "Credentials go in secret_env.",
    )
    secret_env: list[SecretEnv] = Field(
        default_factory=list, description="Secrets exposed as environment variables, by Secret name and key."
    )
    pvc: PvcMount | None = Field(None, description="An existing PVC to mount, or None.")
    run_as_user: int | None = Field(
        IMAGE_UID,
        ge=1,
        description="UID and GID the container runs as (non-root, as the 'restricted' Pod Security Standard "
        "requires); matches the trainer images' USER. None leaves it to the cluster.",
    )
    retries: int = Field(
        0, ge=0, le=10,
        description="Times KFP retries a failed task; a retried training stage resumes from its last checkpoint "
        "under checkpoint_root. KFP retries only a main container that failed, not a pod that was evicted or "
        "whose node was lost (docs/platform.md, section A8).",
    )
    backoff_duration: str = Field("60s", description="Wait before the first retry, in seconds, e.g. '60s'.")
    backoff_factor: float = Field(2.0, ge=1.0, description="Each further retry waits this many times longer.")
    backoff_max_duration: str = Field(
        "86400s",
        description="Retry window, in seconds (Argo's backoff.maxDuration): a deadline counted from the task's "
        "first attempt, running time included, after which no retry starts. KFP's own default, 3600s, would "
        "stop retrying any stage that has run for an hour; set it above the stage's run time x (retries + 1).",
    )
    caching: bool = Field(True, description="Reuse the outputs of an identical earlier run of this task.")

    @field_validator("node_selector")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not _LABEL_KEY.match(key):
                raise ValueError(f"{key!r} is not a valid label key (e.g. cloud.google.com/gke-accelerator)")
            if not _LABEL_VALUE.match(value):
                raise ValueError(f"{value!r} (for {key}) is not a valid label value")
        return v

    @field_validator("accelerator_type")
    @classmethod
    def _accelerator_type(cls, v: str | None) -> str | None:
        if v is not None and not _EXTENDED_RESOURCE.match(v):
            raise ValueError(
                f"{v!r} is not a Kubernetes resource name: use the device plugin's resource (nvidia.com/gpu, "
                "amd.com/gpu) and pick the GPU model with node_selector, "
                "e.g. {cloud.google.com/gke-accelerator: nvidia-l4}"
            )
        return v

    @field_validator("cpu_request", "cpu_limit")
    @classmethod
    def _cpu(cls, v: str | None) -> str | None:
        if v is not None and not _CPU.match(v):
            raise ValueError(f"{v!r} is not a CPU quantity: a number of cores ('2', '1.5') or millicores ('500m')")
        return v

    @field_validator("memory_request", "memory_limit")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        if v is not None and not _MEMORY.match(v):
            raise ValueError(f"{v!r} is not a memory quantity: an integer with an optional suffix, e.g. '16Gi', '512Mi'")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not _ENV_NAME.match(name):
                raise ValueError(f"environment variable name {name!r} must match [A-Za-z_][A-Za-z0-9_]*")
            if _SECRET_LOOKING.search(name):
                raise ValueError(f"{name} looks like a credential: put it in a Secret and list it in secret_env")
        return v

    @field_validator("backoff_duration", "backoff_max_duration")
    @classmethod
    def _duration(cls, v: str) -> str:
        if not _DURATION.match(v):
            raise ValueError(f"{v!r} is not a duration in seconds such as '60s'")
        return v

    def retry_waits(self) -> list[float]:
        """Seconds waited before each retry: backoff_duration x backoff_factor^i."""
        first = float(self.backoff_duration[:-1])
        return [first * self.backoff_factor**i for i in range(self.retries)]

    def check_consistent(self) -> None:
        """Cross-field rules, checked on merged settings only (a stage override alone may be partial)."""
        waits = self.retry_waits()
        if waits and sum(waits) >= float(self.backoff_max_duration[:-1]):
            raise ValueError(
                f"backoff_max_duration {self.backoff_max_duration} is used up by the waits alone before retry "
                f"{self.retries} ({' + '.join(f'{w:g}s' for w in waits)} = {sum(waits):g}s), so the last retries "
                "would never run: raise backoff_max_duration above the stage's run time x (retries + 1) plus "
                "the waits, or lower retries, backoff_duration or backoff_factor"
            )
        if self.accelerator_count > 0 and self.accelerator_type is None:
            raise ValueError("accelerator_count is set but accelerator_type is not (e.g. nvidia.com/gpu)")
        if self.accelerator_type is not None and self.accelerator_count == 0:
            raise ValueError(f"accelerator_type is {self.accelerator_type} but accelerator_count is 0")
        if self.cpu_request and self.cpu_limit and cpu_cores(self.cpu_request) > cpu_cores(self.cpu_limit):
            raise ValueError(f"cpu_request {self.cpu_request} exceeds cpu_limit {self.cpu_limit}")
        if (
            self.memory_request
            and self.memory_limit
            and memory_bytes(self.memory_request) > memory_bytes(self.memory_limit)
        ):
            raise ValueError(f"memory_request {self.memory_request} exceeds memory_limit {self.memory_limit}")


class ClusterProfile(_Strict):
    """Platform settings for a whole pipeline on one kind of cluster."""

    name: str = Field(description="Short name shown in logs, e.g. gke-gpu.")
    defaults: StageSettings = Field(
        default_factory=StageSettings, description="Settings every stage starts from."
    )
    stages: dict[StageName, StageSettings] = Field(
        default_factory=dict, description="Per-stage overrides; only the fields written there replace the defaults."
    )
    pipeline_root: str | None = Field(
        None,
        description="Where KFP stores artifacts (s3://..., gs://...), for the pipeline's or the run's "
        "pipeline_root; None uses the namespace's kfp-launcher ConfigMap (defaultPipelineRoot).",
    )

    @model_validator(mode="after")
    def _merged_stages_valid(self) -> ClusterProfile:
        # Every stage's merged settings must hold together (a stage's request above the defaults' limit).
        problems: list[str] = []
        for stage in STAGES:
            try:
                self.for_stage(stage)
            except ValueError as err:
                where = f"stages.{stage} (merged with defaults)" if stage in self.stages else "defaults"
                line = f"{where}: {err}"
                if line not in problems:
                    problems.append(line)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def for_stage(self, stage: str) -> StageSettings:
        """Defaults overlaid with the fields the stage's own entry sets (whole fields replace, no deep merge).

        Stages in NO_CACHE_STAGES run uncached unless their own entry sets `caching`.
        """
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
        merged = self.defaults.model_dump()
        override = self.stages.get(stage)
        if override is not None:
            merged.update(override.model_dump(include=override.model_fields_set))
        if stage in NO_CACHE_STAGES and (override is None or "caching" not in override.model_fields_set):
            merged["caching"] = False
        settings = StageSettings.model_validate(merged)
        settings.check_consistent()
        return settings


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the field."""


def _field_path(loc: tuple) -> str:
    parts = []
    for part in loc:
        if part == "[key]":  # pydantic marks a bad dict key this way; the key itself is the part before
            continue
        parts.append(f"[{part}]" if isinstance(part, int) else str(part))
    return ".".join(parts).replace(".[", "[")


def load_profile(path: str | Path) -> ClusterProfile:
    """Read and validate a profile YAML file.

    Raises:
        ProfileError: "<file>: <field.path>: <what was wrong>", one line per problem.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ProfileError(f"{path}: cannot read: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ProfileError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a mapping with name/defaults/stages, got {type(data).__name__}")
    try:
        return ClusterProfile.model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            where = _field_path(e["loc"])
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "literal_error" and e["loc"][:1] == ("stages",):
                msg = f"unknown stage name; {msg}"
            lines.extend(f"{path}: {where}: {m}" if where else f"{path}: {m}" for m in msg.splitlines())
        raise ProfileError("\n".join(lines)) from None


def configure_task(task: PipelineTask, stage: str, profile: ClusterProfile | None) -> PipelineTask:
    """Apply a stage's platform settings to a KFP task; returns the task for chaining.

    With `profile=None` (the local runner, or a quick compile) only caching is set: off for the stages in
    NO_CACHE_STAGES, on for the rest. The image comes from the component's `base_image` unless the
    profile names one for the stage.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    if profile is None:
        return task.set_caching_options(stage not in NO_CACHE_STAGES)

    from kfp import kubernetes

    s = profile.for_stage(stage)
    task.set_caching_options(s.caching)
    if s.retries:
        task.set_retry(num_retries=s.retries, backoff_duration=s.backoff_duration, backoff_factor=s.backoff_factor,
                       backoff_max_duration=s.backoff_max_duration)
    if s.image:
        task.set_container_image(IMAGE_ALIASES.get(s.image, s.image))
    if s.accelerator_type:
        task.set_accelerator_type(s.accelerator_type)
        task.set_accelerator_limit(s.accelerator_count)
    if s.cpu_request:
        task.set_cpu_request(s.cpu_request)
    if s.cpu_limit:
        task.set_cpu_limit(s.cpu_limit)
    if s.memory_request:
        task.set_memory_request(s.memory_request)
    if s.memory_limit:
        task.set_memory_limit(s.memory_limit)
    for name, value in s.env.items():
        task.set_env_variable(name, value)
    for key, value in s.node_selector.items():
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for t in s.tolerations:
        kubernetes.add_toleration(task, key=t.key, operator=t.operator, value=t.value, effect=t.effect)
    for secret in s.secret_env:
        kubernetes.use_secret_as_env(
            task, secret_name=secret.secret_name, secret_key_to_env=dict(secret.mapping), optional=secret.optional
        )
    if s.pvc:
        kubernetes.mount_pvc(task, pvc_name=s.pvc.name, mount_path=s.pvc.mount_path)
    if s.run_as_user is not None:
        kubernetes.set_security_context(
            task, run_as_user=s.run_as_user, run_as_group=s.run_as_user, run_as_non_root=True
        )
    return task
