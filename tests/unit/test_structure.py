"""House rules of the structure, checked on the source with `ast` (nothing is imported or run).

- Stages import library modules (scoring, loop, models, data, ...), never each other; `stages.common`
  is the stages' shared helper, not a stage.
- Production code does not read the demo package: evaluation sets are inputs with packaged defaults
  in kubealign.data. Only the demo itself and the CLI's `make run` defaults (`cli.demo_defaults`) use it.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "kubealign"
STAGES = SRC / "stages"
HELPERS = {"__init__", "common"}


def imported_modules(path: Path) -> list[str]:
    """Every module an `import` or `from ... import` in `path` names (a `from pkg import name` counts
    as `pkg.name`, which is how `from kubealign.stages import dpo` imports a stage)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else f"kubealign.stages.{node.module}"
            out += [base, *(f"{base}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.ImportFrom) and node.level:  # `from . import dpo`
            out += [f"kubealign.stages.{a.name}" for a in node.names]
    return out


def cross_stage_imports(stages_dir: Path) -> list[str]:
    stages = {p.stem for p in stages_dir.glob("*.py")} - HELPERS
    found = []
    for path in sorted(stages_dir.glob("*.py")):
        for module in imported_modules(path):
            parts = module.split(".")
            if parts[:2] == ["kubealign", "stages"] and len(parts) > 2 and parts[2] in stages - {path.stem}:
                found.append(f"{path.name} imports {module}")
    return found


def test_no_stage_imports_another() -> None:
    assert cross_stage_imports(STAGES) == []


def test_the_check_sees_each_import_form(tmp_path: Path) -> None:
    for name, text in {"a.py": "from kubealign.stages.b import x\n", "b.py": "from kubealign.stages import c\n",
                       "c.py": "import kubealign.stages.a\n", "d.py": "from . import a\n",
                       "e.py": "from kubealign.stages import common\nfrom kubealign import scoring\n"}.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "common.py").write_text("")
    assert cross_stage_imports(tmp_path) == [
        "a.py imports kubealign.stages.b", "a.py imports kubealign.stages.b.x", "b.py imports kubealign.stages.c",
        "c.py imports kubealign.stages.a", "d.py imports kubealign.stages.a"]


def test_production_code_does_not_import_the_demo() -> None:
    allowed = {SRC / "cli.py"}  # `kubealign run` without inputs runs the demo on its data
    offenders = [f"{p.relative_to(SRC)} imports {m}" for p in sorted(SRC.rglob("*.py"))
                 if "demo" not in p.relative_to(SRC).parts and p not in allowed
                 for m in imported_modules(p) if m == "kubealign.demo" or m.startswith("kubealign.demo.")]
    assert offenders == []
