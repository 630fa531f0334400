"""Pipeline parameters as a person gives them (`--config FILE`, `--set key=value`), checked up front.

The CLI checks a run's parameters here before starting KFP, so a typo fails in a second with the
parameter's name instead of minutes later inside a component. Components validate again with the
same pydantic models (the Kubeflow UI path never passes through the CLI). No torch imported here.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kubealign import knobs
from kubealign.config import ConfigError, PublishConfig, build


def signature_params(pipeline_func: Any) -> dict[str, inspect.Parameter]:
    """The pipeline function's parameters (KFP keeps the Python function on `.pipeline_func`)."""
    func = getattr(pipeline_func, "pipeline_func", pipeline_func)
    return dict(inspect.signature(func).parameters)


_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _short(raw: Any) -> str:
    if isinstance(raw, int) and abs(raw) >= 10**30:  # repr of a huge int may itself fail (4300-digit limit)
        return f"an integer of about {int(raw.bit_length() * 0.30103) + 1} digits"
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(name: str, raw: Any, annotation: type) -> int | float:
    """A finite number; for an int parameter an integral one (1e3 and 4.0 are fine, 1.5e0 is not)."""
    try:
        value = float(raw) if isinstance(raw, str) else raw
    except ValueError:
        value = None
    if isinstance(raw, str) and annotation is int and value is not None and "e" not in raw.lower() and "." not in raw:
        try:
            return int(raw)  # plain integers stay exact beyond float precision
        except ValueError:
            pass
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigError(f"parameter {name}: expected {_KINDS[annotation]}, got {_short(raw)}")
    if isinstance(value, int) and annotation is int:
        return value  # an integer from a YAML/JSON file, however large (the settings check its range)
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        finite = False
    if not finite:
        raise ConfigError(f"parameter {name}: expected a finite number, got {_short(raw)}")
    if annotation is int:
        if not float(value).is_integer():
            raise ConfigError(f"parameter {name}: expected an integer, got {_short(raw)}")
        return int(value)
    return float(value)


def _coerce(name: str, raw: Any, annotation: Any) -> Any:
    """`raw` (text from --set, or a YAML/JSON value) as the parameter's type; ConfigError naming it otherwise."""
    if annotation not in _KINDS:
        return raw
    if annotation is bool:
        if isinstance(raw, bool):
            return raw
        low = raw.strip().lower() if isinstance(raw, str) else None
        if low in ("true", "1", "yes", "false", "0", "no"):
            return low in ("true", "1", "yes")
        raise ConfigError(f"parameter {name}: expected {_KINDS[bool]}, got {raw!r}")
    if annotation is str:
        if not isinstance(raw, str):
            raise ConfigError(f"parameter {name}: expected {_KINDS[str]}, got {raw!r}")
        return raw
    return _number(name, raw, annotation)


def load_config_file(path: str) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError, RecursionError) as err:  # ValueError: bad JSON, or a 5,000-digit number
        raise ConfigError(f"{path}: not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of pipeline parameters, got {type(data).__name__}")
    return data


def resolve(pipeline_func: Any, defaults: dict[str, Any], config_file: str | None,
            sets: list[str], require: bool = True) -> dict[str, Any]:
    """defaults < config file < --set, each key checked against the pipeline's parameters."""
    params = signature_params(pipeline_func)
    merged: dict[str, Any] = {}
    sources: list[tuple[str, dict[str, Any]]] = [("defaults", defaults)]
    if config_file:
        sources.append((config_file, load_config_file(config_file)))
    pairs = {}
    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, value = item.split("=", 1)
        pairs[key.strip()] = value
    sources.append(("--set", pairs))
    problems = []
    for where, values in sources:
        for key, value in values.items():
            if key not in params:
                problems.append(f"{where}: unknown parameter {key!r}; valid: {', '.join(sorted(params))}")
                continue
            try:
                merged[key] = _coerce(key, value, params[key].annotation)
            except ConfigError as err:
                problems.append(str(err))
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in merged]
    if missing and require:
        problems.append(f"missing required parameter(s): {', '.join(missing)}")
    if problems:
        raise ConfigError("\n".join(problems))
    return merged


# How the up-front check names a stage in its messages (the parameters' prefix).
_WHERE = {"sft": "sft_*", "dpo": "dpo_*", "reward": "reward_*", "ppo": "ppo_*", "evaluate": "eval_*",
          "gate": "gate_*", "merge": "merge_*"}


def _stage_problems(graph: str, stage: str, full: dict[str, Any]) -> list[str]:
    """One line per settings problem of `stage`, each naming the pipeline parameter that set the field."""
    data = knobs.settings_data(stage, knobs.args_for(graph, stage, full))
    if stage == "data_prep":
        data["kind"] = "sft"
    param_of = {path: k.name for k in knobs.KNOBS[graph] for s, path in k.targets if s == stage}
    where = f"parameters ({_WHERE[stage]})" if stage in _WHERE else "parameters"
    try:
        knobs.STAGE_MODELS[stage].model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            loc = ".".join(str(x) for x in e["loc"])
            got = f" (got {json.dumps(e['input'], default=str)})" if loc else ""
            named = f" [parameter {param_of[loc]}]" if loc in param_of else ""
            lines.append(f"{where}: {loc or '(settings)'}: {e['msg']}{got}{named}")
        return lines
    return []


def check_stage_settings(p: dict[str, Any], graph: str) -> None:
    """Build the settings of every stage the graph runs (gate and publish included) from the parameters,
    so bad values fail before the run starts; raises one ConfigError listing every problem."""
    full = {**_defaults_of(graph), **p}
    problems: list[str] = []
    seen: set[str] = set()
    for stage in knobs.stages_of(graph):
        for line in _stage_problems(graph, stage, full):
            # A shared knob (wandb_mode, batch_size) fails alike in every stage it sets: say it once.
            key = line.split(": ", 1)[1]
            if key not in seen:
                seen.add(key)
                problems.append(line)
    if "model_version" in full:
        # Names are checked even when publishing is off: a typo should not wait for the first release.
        try:
            build(PublishConfig, {"root": full["registry_root"] or "unset", "model_name": full["model_name"],
                                  "version": full["model_version"] or "run-name"}, where="parameters (publish)")
        except ConfigError as err:
            problems += str(err).splitlines()
    if problems:
        raise ConfigError("\n".join(problems))


def _defaults_of(graph: str) -> dict[str, Any]:
    from kubealign.graphs import pipeline

    func = pipeline(graph)
    return {n: p.default for n, p in signature_params(func).items() if p.default is not inspect.Parameter.empty}


_RECORD_INPUTS = ("sft_data", "preference_data", "safety_data", "eval_harmful_prompts", "eval_benign_edgy_prompts",
                  "eval_helpful_prompts", "taxonomy_uri")
_MODEL_INPUTS = ("base_model", "safety_model")
_REQUIRED = ("base_model", "sft_data", "preference_data", "safety_data")


def _local_problem(key: str, uri: str) -> str | None:
    path = Path(uri.removeprefix("file://"))
    if not path.exists():
        return f"parameter {key}: {uri} does not exist"
    if key in _MODEL_INPUTS:
        if not (path / "config.json").exists():
            return f"parameter {key}: {uri} is not a model folder (expected config.json inside)"
        return None
    if path.is_dir():
        return f"parameter {key}: {uri} is a folder; expected a JSONL/Parquet file"
    try:
        with path.open("rb") as f:
            if not f.read(1 << 16).strip():
                return f"parameter {key}: {uri} is empty; expected at least one record"
    except OSError as err:
        return f"parameter {key}: {uri} cannot be read ({err.strerror})"
    return None


def check_local_inputs(p: dict[str, Any]) -> None:
    """Inputs on this machine must be there before a run starts: required ones given, files non-empty
    records, models model folders. Remote URIs are left to the stages (no credentials needed here)."""
    problems = [f"parameter {key}: required, got an empty value" for key in _REQUIRED if p.get(key) == ""]
    for key in (*_MODEL_INPUTS, *_RECORD_INPUTS):
        uri = p.get(key)
        if not uri or ("://" in uri and not uri.startswith("file://")):
            continue
        problem = _local_problem(key, uri)
        if problem:
            problems.append(problem)
    if problems:
        raise ConfigError("\n".join(problems))


def _remote_problem(key: str, uri: str) -> str | None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    if key in _MODEL_INPUTS:
        if not fs.exists(f"{path.rstrip('/')}/config.json"):
            return f"parameter {key}: {uri} is not a model folder (no config.json there, or no such folder)"
        return None
    if not fs.exists(path):
        return f"parameter {key}: {uri} does not exist"
    if fs.isdir(path):
        return f"parameter {key}: {uri} is a folder; expected a JSONL/Parquet file"
    if not fs.info(path).get("size"):
        return f"parameter {key}: {uri} is empty; expected at least one record"
    return None


def check_remote_inputs(p: dict[str, Any]) -> None:
    """Object-store inputs of a run on this machine (s3://, gs://, ...) exist and can be read with this
    machine's credentials; a store that refuses (no credentials, access denied) is one line per input."""
    problems = []
    for key in (*_MODEL_INPUTS, *_RECORD_INPUTS):
        uri = p.get(key)
        if not uri or "://" not in uri or uri.startswith("file://"):
            continue
        try:
            problem = _remote_problem(key, uri)
        except Exception as err:  # noqa: BLE001 - botocore/gcsfs errors have no common base; report, don't crash
            problem = f"parameter {key}: {uri} cannot be read ({type(err).__name__}: {err})"
        if problem:
            problems.append(problem)
    if problems:
        raise ConfigError("\n".join(problems))
