"""Structure figures for the refactoring notes: the largest functions and stage-to-stage imports.

    .venv/bin/python scripts/structure_metrics.py .

Counts `end_lineno - lineno + 1` of every function in src/, components/ and pipelines/, and every
`from kubealign.stages.<other> import ...` inside src/kubealign/stages/ (common.py excepted).
"""

import ast
import pathlib
import sys

root = pathlib.Path(sys.argv[1])
best = []
cross = []
for p in list((root/"src").rglob("*.py")) + list((root/"components").glob("*.py")) + list((root/"pipelines").glob("*.py")):
    t = ast.parse(p.read_text())
    for n in ast.walk(t):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            best.append((n.end_lineno - n.lineno + 1, f"{p.relative_to(root)}:{n.lineno} {n.name}"))
    if p.parent.name == "stages":
        for n in ast.walk(t):
            if isinstance(n, ast.ImportFrom) and n.module:
                if n.module.startswith("kubealign.stages.") or (n.module == "kubealign.stages" and any(a.name != "common" for a in n.names)):
                    if not n.module.endswith(".common"):
                        cross.append(f"{p.relative_to(root)}: from {n.module} import {[a.name for a in n.names]}")
best.sort(reverse=True)
print("largest functions:", best[:5])
print("cross-stage imports:", len(cross))
print("\n".join(cross))
