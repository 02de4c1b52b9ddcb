"""``fog_pipeline.core`` is the library a deployment imports: it must not need Kedro
(the pipelines and datasets are the Kedro layer over it)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import fog_pipeline.core

CORE = Path(fog_pipeline.core.__file__).parent
SRC = CORE.parents[1]


def core_modules() -> list[str]:
    return sorted(
        ".".join(file.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for file in CORE.rglob("*.py")
    )


def test_no_core_file_imports_kedro():
    found = []
    for file in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            found += [
                f"{file.relative_to(SRC)}:{node.lineno} imports {name}"
                for name in names
                if name == "kedro" or name.startswith("kedro.")
            ]
    assert not found, "\n".join(found)


def kedro_loaded_by(modules: list[str]) -> list[str]:
    """The Kedro modules a fresh interpreter holds after importing ``modules``."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'kedro'"
        " or m.startswith('kedro_'))))\n"
    )
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_every_core_module_loads_no_kedro():
    """Also catches Kedro pulled in indirectly (a core module importing one that does)."""
    modules = core_modules()
    assert "fog_pipeline.core.io" in modules and "fog_pipeline.core.envs" in modules
    loaded = kedro_loaded_by(modules)
    assert loaded == [], f"importing fog_pipeline.core loads {loaded}"


def test_the_import_check_sees_kedro_when_something_loads_it():
    assert "kedro.pipeline" in kedro_loaded_by(["fog_pipeline.pipeline_registry"])
