"""The graph registry: graph name -> the module that builds its pipeline. The one list of graphs.

cli, cli_server, kfp_client and pipeline_params read it; it imports none of them (and no KFP
until a pipeline is asked for), so the command modules form no import cycle through it.
"""

from __future__ import annotations

import importlib
from typing import Any

from kubealign.config import ConfigError

MODULES = {"dpo": "kubealign.pipelines.dpo", "ppo": "kubealign.pipelines.ppo", "safety": "kubealign.pipelines.safety",
           "rlaif": "kubealign.pipelines.rlaif", "rlaif_ppo": "kubealign.pipelines.rlaif_ppo"}
ROUNDED = ("rlaif",)  # graphs whose build takes `rounds` (unrolled at compile time)
GRAPHS: tuple[str, ...] = tuple(MODULES)


def pipeline(graph: str, profile_path: str | None = None, rounds: int | None = None, profile: Any = None) -> Any:
    """The graph's pipeline function; with a cluster profile (a file, or a loaded ClusterProfile),
    built with that profile's settings; with `rounds` (graphs in ROUNDED only), built with that many rounds."""
    if graph not in MODULES:
        raise ConfigError(f"unknown graph {graph!r}; expected one of {', '.join(GRAPHS)}")
    if rounds is not None and graph not in ROUNDED:
        raise ConfigError(f"--rounds: only the {', '.join(ROUNDED)} graph has rounds, not {graph!r}")
    module = importlib.import_module(MODULES[graph])
    if profile_path is not None:
        from kubealign.profiles import load_profile

        profile = load_profile(profile_path)
    if profile is None and rounds is None:
        return getattr(module, f"{graph}_pipeline")
    return module.build(profile, rounds=rounds) if rounds is not None else module.build(profile)
