"""Component and pipeline functions generated from the knob table (kubealign.knobs).

KFP reads a component's interface from its Python signature at compile time, and ships the
function's *source text* to the container, where the executor reads the signature again to know
which inputs to pass. So a component's signature must exist as source: `stage_component` writes the
`def` line from the table (types and defaults from the stage's settings), registers the text with
`linecache` under a pseudo file name (how `inspect.getsource`, and so KFP, finds source that never
lived in a file), and hands the function to `dsl.component`. Its body is one call into
`kubealign.component_runtime`, which holds the stage logic.

A pipeline function's body never leaves this process: `graph_pipeline` gives a plain function a
generated `__signature__` and a Google-style docstring whose `Args:` KFP copies into the compiled
IR as each root parameter's description.
"""

from __future__ import annotations

import inspect
import linecache
from collections.abc import Callable
from typing import Any

from kubealign import knobs


def _source(name: str, params: list[str], returns: str | None, doc: str) -> str:
    sig = ",\n    ".join(params)
    ret = f" -> {returns}" if returns else ""
    return (f"def {name}(\n    {sig},\n){ret}:\n    {doc!r}\n    params = dict(locals())\n"
            f"    from kubealign.component_runtime import run_component\n\n"
            f"    return run_component({name!r}, params)\n")


def component_function(name: str, stage: str | None, *, required: tuple[str, ...] = (),
                       optional: tuple[str, ...] = (), returns: str | None = None, doc: str = "",
                       module: str = __name__) -> Callable[..., Any]:
    """A plain function `name` with `required` and `optional` parameters (source text, e.g.
    "data: Input[Dataset]" and "reward_model: Input[Model] = None"), then the settings parameters of
    `stage` from the knob table, written with their settings defaults."""
    settings = [f"{arg}: {typ.__name__} = {default!r}"
                for arg, typ, default in (knobs.component_params(stage) if stage else [])]
    text = _source(name, [*required, *optional, *settings], returns, doc)
    filename = f"<kubealign-component {name}>"
    # mtime None: linecache.checkcache keeps the entry although no such file exists.
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": module}
    # The names KFP's own preamble imports in the container (`from kfp.dsl import *`, typing).
    exec("from kfp.dsl import *\nfrom typing import *", namespace)  # noqa: S102 - fixed text
    exec(compile(text, filename, "exec", dont_inherit=True), namespace)  # noqa: S102 - text generated from the knob table
    return namespace[name]


def stage_component(name: str, stage: str | None, *, gpu: bool = False, **kwargs: Any) -> Any:
    """`component_function` wrapped by kubealign's `@dsl.component` (trainer image, no pip install)."""
    from kubealign.kfp_support import component

    return component(gpu=gpu)(component_function(name, stage, **kwargs))


def pipeline_docstring(summary: str, params: list[tuple[str, type, Any, str]]) -> str:
    """A Google-style docstring whose `Args:` KFP turns into parameter descriptions."""
    lines = [summary, "", "Args:"]
    lines += [f"    {name}: {' '.join(desc.split())}" for name, _, _, desc in params]
    return "\n".join(lines) + "\n"


def graph_pipeline(graph: str, name: str, description: str, body: Callable[[dict[str, Any]], None]) -> Any:
    """`@dsl.pipeline` over a function whose parameters are the graph's knob-table parameters.

    KFP calls the function with one pipeline channel per parameter, in signature order; `body`
    receives them as a name -> channel dict.
    """
    from kfp import dsl

    params = knobs.pipeline_params(graph)
    names = [p[0] for p in params]

    def pipeline_func(*args: Any, **kwargs: Any) -> None:
        body({**dict(zip(names, args, strict=False)), **kwargs})

    pipeline_func.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d, annotation=t)
         for n, t, d, _ in params])
    pipeline_func.__annotations__ = {n: t for n, t, _, _ in params}
    pipeline_func.__doc__ = pipeline_docstring(description, params)
    pipeline_func.__name__ = pipeline_func.__qualname__ = f"{graph}_pipeline"
    return dsl.pipeline(name=name, description=description)(pipeline_func)
