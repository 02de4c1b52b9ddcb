"""dvc.yaml's code dependencies match the code each stage runs, computed from the imports.

A stage that runs ``kedro run --pipeline=<name>`` runs the code of
``fog_pipeline/pipelines/<name>/``, of the project's Kedro settings (its hooks seed every
run), of the datasets its catalog entries name, and of every ``fog_pipeline`` module those
import, transitively (read with ``ast``: nothing is imported to find out). Every such
file must be covered by one of the stage's deps (the file or a folder above it), or
``dvc repro`` would not rerun the stage when that file changes.

Only modules an import names are counted, not the packages above them: the project's
``__init__.py`` files re-export names and import lazily, so an edit there that changes a
stage's result also changes a module the stage imports by name.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "fog_pipeline"
# What Kedro loads for every run of the project, whichever the pipeline.
KEDRO_ROOTS = ("fog_pipeline.settings",)
# The environments a stage runs in (dvc.yaml: $KEDRO_ENV unset, smoke or gpu).
CATALOGS = ("conf/base/catalog*.yml", "conf/smoke/catalog*.yml", "conf/gpu/catalog*.yml")
KEDRO_RUN = re.compile(r"\bkedro run\b.*--pipeline[= ](\w+)")


def module_file(name: str) -> Path | None:
    """The source file of module ``name`` under src/, None if it is no module there."""
    path = SRC.joinpath(*name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def module_name(file: Path) -> str:
    parts = file.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def imports(file: Path) -> frozenset[Path]:
    """The files of the project modules ``file`` imports, anywhere in it (a lazy import
    in a function runs when the function does)."""
    name = module_name(file)
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: ``from ..x import y`` inside ``package``
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + [node.module or ""])
                base = base.rstrip(".")
            else:
                base = node.module
            named.add(base)
            # ``from x import y``: y may be a submodule of x (module_file tells).
            named.update(f"{base}.{alias.name}" for alias in node.names)
    files = {module_file(n) for n in named if n == PACKAGE or n.startswith(PACKAGE + ".")}
    return frozenset(files - {None})


def closure(roots: dict[Path, str]) -> dict[Path, str]:
    """Every file reachable from ``roots`` ({file: why it is a root}), each with the chain
    of imports that reaches it (for the failure message)."""
    found = dict(roots)
    todo = list(roots)
    while todo:
        file = todo.pop()
        for imported in imports(file):
            if imported not in found:
                found[imported] = f"{found[file]} -> {module_name(imported)}"
                todo.append(imported)
    return found


def dataset_module(type_name: str) -> Path | None:
    """The file defining a catalog ``type``: ``fog_pipeline.datasets.X`` is re-exported by
    the package's ``__init__`` from the module that defines it."""
    if not type_name.startswith(PACKAGE + "."):
        return None  # one of Kedro's (pandas.CSVDataset, ...)
    module, _, name = type_name.rpartition(".")
    init = module_file(module)
    assert init is not None, f"catalog type {type_name}: no module {module}"
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.ImportFrom) and name in {a.name for a in node.names}:
            return module_file(node.module)
    return init


@cache
def catalog_types() -> dict[str, str]:
    types = {}
    for pattern in CATALOGS:
        for file in sorted(REPO.glob(pattern)):
            for entry, spec in (yaml.safe_load(file.read_text()) or {}).items():
                if isinstance(spec, dict) and "type" in spec and not entry.startswith("_"):
                    types.setdefault(entry, set()).add(spec["type"])
    return types


def pipeline_roots(pipeline: str) -> dict[Path, str]:
    import importlib

    folder = SRC / PACKAGE / "pipelines" / pipeline
    assert folder.is_dir(), f"no pipeline package {folder}"
    roots = {file: module_name(file) for file in sorted(folder.rglob("*.py"))}
    for name in KEDRO_ROOTS:
        roots[module_file(name)] = f"{name} (loaded by Kedro for every run)"
    created = importlib.import_module(f"{PACKAGE}.pipelines.{pipeline}").create_pipeline()
    types = catalog_types()
    for dataset in sorted(created.datasets()):
        for type_name in sorted(types.get(dataset, ())):
            file = dataset_module(type_name)
            if file is not None:
                roots[file] = f"catalog entry {dataset!r} ({type_name})"
    return roots


def kedro_stages() -> dict[str, tuple[str, list[str]]]:
    """{stage: (pipeline, deps)} for the dvc.yaml stages that run a Kedro pipeline."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    found = {}
    for stage, spec in stages.items():
        match = KEDRO_RUN.search(spec["cmd"])
        if match:
            found[stage] = (match.group(1), [str(d) for d in spec.get("deps", [])])
    return found


def covered(file: Path, deps: list[str]) -> bool:
    return any(file == REPO / dep or REPO / dep in file.parents for dep in deps)


def missing_deps(stage: str, pipeline: str, deps: list[str]) -> list[str]:
    return [
        f"dvc.yaml stage {stage!r} runs {file.relative_to(REPO)} but does not depend on it "
        f"(reached by {chain})"
        for file, chain in sorted(closure(pipeline_roots(pipeline)).items())
        if not covered(file, deps)
    ]


def unused_code_deps(stage: str, pipeline: str, deps: list[str]) -> list[str]:
    files = closure(pipeline_roots(pipeline))
    return [
        f"dvc.yaml stage {stage!r} depends on {dep}, which its pipeline never imports"
        for dep in deps
        if dep.startswith("src/") and not any(covered(file, [dep]) for file in files)
    ]


STAGES = kedro_stages()


def test_every_kedro_pipeline_but_the_conversions_has_a_stage():
    pipelines = {p.parent.name for p in (SRC / PACKAGE / "pipelines").glob("*/pipeline.py")}
    staged = {pipeline for pipeline, _ in STAGES.values()}
    # Conversions run on demand (pipeline_registry.BY_NAME_ONLY), outside the DAG.
    assert pipelines - staged == {"import_lerobot", "export_lerobot"}
    assert staged <= pipelines


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_depends_on_all_the_code_it_runs(stage):
    pipeline, deps = STAGES[stage]
    missing = missing_deps(stage, pipeline, deps)
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_code_deps_are_all_used(stage):
    pipeline, deps = STAGES[stage]
    unused = unused_code_deps(stage, pipeline, deps)
    assert not unused, "\n".join(unused)


def test_a_missing_dep_is_named_with_its_stage_and_import_chain():
    runs = closure(pipeline_roots("world_model"))
    deps = [str(file.relative_to(REPO)) for file in runs]
    assert missing_deps("world_model", "world_model", deps) == []
    dropped = [dep for dep in deps if dep != "src/fog_pipeline/core/device.py"]
    assert len(dropped) == len(deps) - 1, "the example needs world_model to use core/device.py"
    (message,) = missing_deps("world_model", "world_model", dropped)
    assert message.startswith(
        "dvc.yaml stage 'world_model' runs src/fog_pipeline/core/device.py but does not"
    )
    assert "fog_pipeline.pipelines.world_model" in message and message.endswith(
        "-> fog_pipeline.core.device)"
    )


def test_imports_are_followed_through_relative_and_submodule_imports(tmp_path, monkeypatch):
    package = tmp_path / PACKAGE
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "root.py": "from . import sibling\nfrom .sub import deep\n",
        "sibling.py": "def f():\n    import fog_pipeline.lazy\n",
        "lazy.py": "import os\n",
        "sub/__init__.py": "",
        "sub/deep.py": "from ..sub.leaf import name\n",
        "sub/leaf.py": "name = 1\n",
        "unused.py": "",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    monkeypatch.setattr(f"{__name__}.SRC", tmp_path)
    imports.cache_clear()
    try:
        found = closure({package / "root.py": "root"})
    finally:
        imports.cache_clear()
    names = sorted(str(p.relative_to(package)) for p in found)
    # ``from . import sibling`` runs the package's __init__.py too.
    assert names == [
        "__init__.py",
        "lazy.py",
        "root.py",
        "sibling.py",
        "sub/__init__.py",
        "sub/deep.py",
        "sub/leaf.py",
    ]
