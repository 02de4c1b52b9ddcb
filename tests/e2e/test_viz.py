"""kedro-viz end to end: build the static site, open it in headless Chromium, and check that
the pipelines' nodes and layers really render; plus the metadata that makes the DAG readable.

The screenshot is kept as an artifact: in the test's tmp dir and in
``build/test-artifacts/kedro_viz.png`` (``build/`` is gitignored).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ARTIFACT = REPO / "build" / "test-artifacts" / "kedro_viz.png"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Nodes that must exist whatever else the team adds: guards against an empty registry
# making the render check pass vacuously.
KNOWN_NODES = {"record_episodes", "clean_episodes", "train_world_model", "distill_surrogate"}


def copy_project(target: Path) -> Path:
    """The project's config in ``target`` (as tests/pipelines/conftest.py does): kedro and
    kedro-viz run there, so nothing (``build/``, ``.viz/``) is written into the repo."""
    shutil.copy(REPO / "pyproject.toml", target / "pyproject.toml")
    shutil.copytree(REPO / "conf", target / "conf", ignore=shutil.ignore_patterns("local"))
    (target / "conf" / "local").mkdir()
    (target / "src").mkdir()  # Kedro insists on one; the package is the installed one
    return target


@pytest.fixture
def chromium() -> str:
    """The headless browser: $CHROMIUM if set, else the first of CHROMIUM_NAMES on PATH.
    Requested before `viz_site`, so a missing browser skips before the build."""
    for candidate in (os.environ.get("CHROMIUM"), *CHROMIUM_NAMES):
        found = candidate and shutil.which(candidate)
        if found:
            return found
    pytest.skip(
        f"no Chromium binary ($CHROMIUM or one of {', '.join(CHROMIUM_NAMES)} on PATH); "
        "`make browser` installs Debian's `chromium` with apt-get"
    )


def registered_pipelines(project: Path) -> dict:
    bootstrap_project(project)
    from kedro.framework.project import pipelines

    return dict(pipelines)


def is_param(dataset: str) -> bool:
    return dataset == "parameters" or dataset.startswith("params:")


def flowchart_name(node) -> tuple[str, str]:
    """How kedro-viz draws a node by default: namespaced nodes collapse into their
    top-level modular pipeline."""
    if node.namespace:
        return "modularPipeline", node.namespace.split(".")[0]
    return "task", node.name


class FlowchartParser(HTMLParser):
    """Collects the flowchart's SVG nodes and the layer labels from the rendered DOM."""

    def __init__(self):
        super().__init__()
        self.nodes: set[tuple[str, str]] = set()
        self.layers: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attr = dict(attrs)
        classes = (attr.get("class") or "").split()
        if tag == "g" and "pipeline-node" in classes and attr.get("data-node-fullname"):
            self.nodes.add((attr.get("data-node-type", ""), attr["data-node-fullname"]))
        if "pipeline-layer-name" in classes and attr.get("data-id", "").startswith("layer-label--"):
            self.layers.add(attr["data-id"].removeprefix("layer-label--"))


@pytest.fixture
def viz_site(tmp_path):
    """`kedro viz build` in a project copy, served over HTTP (the app fetches its JSON)."""
    (tmp_path / "project").mkdir()
    project = copy_project(tmp_path / "project")
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "true",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("KEDRO_ENV", None)  # viz shows the `base` catalog, as a user sees it
    done = subprocess.run(
        [str(BIN / "kedro"), "viz", "build"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    site = project / "build"
    assert done.returncode == 0 and (site / "api" / "main").is_file(), (
        f"kedro viz build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    # A fresh browser profile opens the feature tour over the graph, and the minimap and
    # sidebar take a third of the window: preset the UI preferences the app keeps in
    # localStorage so the screenshot shows the DAG. Display only; the data is untouched.
    index = site / "index.html"
    prefs = '{"showFeatureHints":false,"visible":{"miniMap":false,"sidebar":false}}'
    preset = f"<script>localStorage.setItem('KedroViz', '{prefs}')</script>"
    index.write_text(index.read_text().replace("<head>", "<head>" + preset, 1))

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield project, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.slow
@pytest.mark.browser
def test_viz_renders_every_node_and_layer(chromium, viz_site, tmp_path):
    project, url = viz_site
    screenshot = tmp_path / "kedro_viz.png"
    # One headless run: the virtual-time budget lets the app fetch its JSON, lay the
    # graph out and finish its transitions before the DOM is dumped and the page shot.
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # root in containers; the page is our own local build
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--window-size=1600,1200",
            "--virtual-time-budget=20000",
            f"--screenshot={screenshot}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"chromium failed:\n{done.stderr[-3000:]}"
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "no screenshot written"
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(screenshot, ARTIFACT)

    dom = FlowchartParser()
    dom.feed(done.stdout)
    default = registered_pipelines(project)["__default__"]
    expected = {flowchart_name(node) for node in default.nodes}
    assert KNOWN_NODES <= {name for _, name in expected}, "the registry lost core nodes"
    expected |= {
        ("data", name)
        for name in default.datasets()
        if not is_param(name) and "." not in name  # namespaced data may be collapsed
    }
    missing = sorted(f"{kind} {name}" for kind, name in expected - dom.nodes)
    assert not missing, f"not drawn in the kedro-viz flowchart (screenshot: {ARTIFACT}): {missing}"

    with KedroSession.create(project_path=project, env="base") as session:
        layers = {layer for _, layer in dataset_layers(session, default)} - {None}
    assert layers and layers <= dom.layers, f"layer bands drawn {dom.layers}, expected {layers}"


def dataset_layers(session, pipeline) -> list[tuple[str, str | None]]:
    """(dataset, kedro-viz layer or None) for every non-parameter dataset of ``pipeline``."""
    catalog = session.load_context().catalog
    rows = []
    for name in sorted(pipeline.datasets()):
        if is_param(name):
            continue
        dataset = catalog.get(name)
        metadata = getattr(dataset, "metadata", None) or {}
        rows.append((name, (metadata.get("kedro-viz") or {}).get("layer")))
    return rows


def test_dag_is_readable_in_viz(tmp_path):
    """What kedro-viz shows: every node named by hand (an unnamed node shows its whole
    signature) and tagged (the tag filter), every dataset in a layer (the layer bands)."""
    project = copy_project(tmp_path)
    pipelines = registered_pipelines(project)
    gaps = []
    for pipeline_name, pipeline in sorted(pipelines.items()):
        for node in pipeline.nodes:
            if not re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*", node.name):
                gaps.append(f"{pipeline_name}: node {node.name!r} has no snake_case name")
            if not node.tags:
                gaps.append(f"{pipeline_name}: node {node.name!r} has no tag")
    with KedroSession.create(project_path=project, env="base") as session:
        for name, layer in dataset_layers(session, pipelines["__default__"]):
            if layer is None:
                gaps.append(f"dataset {name!r}: no `metadata: kedro-viz: layer:` in the catalog")
    assert not gaps, "kedro-viz readability gaps:\n" + "\n".join(sorted(set(gaps)))
