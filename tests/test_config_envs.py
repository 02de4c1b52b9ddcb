"""The `base`, `smoke` and `gpu` environments: their parameters parse, and DVC tracks them.

Parsing runs every stage's typed config (and the model configs sized from a training
set's shapes) without training anything, so a typo in `conf/gpu` fails here, on a CPU
machine, instead of an hour into a GPU run.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from kedro.config import OmegaConfigLoader

from fog_pipeline.core.baselines.training import BaselinesParams
from fog_pipeline.core.config import parse_config
from fog_pipeline.core.episodes.collection import CollectParams
from fog_pipeline.core.evaluation.protocol import EvaluationParams
from fog_pipeline.core.policy.training import parse_policy_params
from fog_pipeline.core.surrogate.rssm import RSSMConfig
from fog_pipeline.pipelines.episodes.nodes import EpisodesParams
from fog_pipeline.pipelines.surrogate.nodes import SurrogateParams
from fog_pipeline.pipelines.world_model.nodes import WorldModelParams, _configs
from fog_pipeline.settings import CONFIG_LOADER_ARGS

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
ENVS = ("base", "smoke", "gpu")
TORCH_STAGES = ("world_model", "surrogate", "policy", "baselines")


def _parameters(env: str) -> dict:
    args = {**CONFIG_LOADER_ARGS, "default_run_env": env if env != "base" else "local"}
    return OmegaConfigLoader(str(CONF), **args)["parameters"]


@pytest.mark.parametrize("env", ENVS)
def test_every_stage_parses(env):
    params = _parameters(env)
    assert isinstance(params["seed"], int)
    collect = parse_config(CollectParams, params["collect"], "collect")
    parse_config(EpisodesParams, params["episodes"], "episodes")
    world_model = parse_config(WorldModelParams, params["world_model"], "world_model")
    surrogate = parse_config(SurrogateParams, params["surrogate"], "surrogate")
    parse_policy_params(params["policy"])
    parse_config(BaselinesParams, params["baselines"], "baselines")
    parse_config(EvaluationParams, params["evaluation"], "evaluation")

    # The architecture sections are sized from the data: size them from the robot's frame.
    width = collect.backend_options.get("width", 32)
    height = collect.backend_options.get("height", width)
    meta = {"frame_shape": [height, width, 3], "action_dim": 2, "state_dim": 2}
    _configs(world_model, SimpleNamespace(meta=meta))
    parse_config(
        RSSMConfig,
        {
            **surrogate.rssm,
            "frame_height": height,
            "frame_width": width,
            "action_dim": 2,
            "proprio_dim": 2,
        },
        "surrogate.rssm",
    )


@pytest.mark.parametrize(("env", "device"), [("base", "cpu"), ("smoke", "cpu"), ("gpu", "cuda")])
def test_one_device_setting_reaches_every_torch_stage(env, device):
    params = _parameters(env)
    assert {stage: params[stage]["device"] for stage in TORCH_STAGES} == dict.fromkeys(
        TORCH_STAGES, device
    )


def _get(tree: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _tracked(stage: dict) -> set[tuple[str, str]]:
    return {
        (file, key) for entry in stage["params"] for file, keys in entry.items() for key in keys
    }


def test_dvc_tracks_the_parameters_of_every_environment():
    """A key a stage reads from conf/base is tracked in every env file that overrides it,
    and a ${globals:...} it reads is tracked in every env's globals.yml."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    missing = []
    for name, stage in stages.items():
        tracked = _tracked(stage)
        for file, key in sorted(tracked):
            if not file.startswith("conf/base/"):
                continue
            base = yaml.safe_load((REPO / file).read_text())
            for env in ENVS[1:]:
                env_file = file.replace("conf/base/", f"conf/{env}/")
                if (REPO / env_file).exists():
                    if _get(yaml.safe_load((REPO / env_file).read_text()), key) is not None:
                        if (env_file, key) not in tracked:
                            missing.append(f"{name}: {env_file}:{key}")
            for global_key in _globals_used(_get(base, key)):
                for env in ENVS:
                    globals_file = f"conf/{env}/globals.yml"
                    if (REPO / globals_file).exists():
                        defined = yaml.safe_load((REPO / globals_file).read_text())
                        if global_key in defined and (globals_file, global_key) not in tracked:
                            missing.append(f"{name}: {globals_file}:{global_key}")
    assert not missing, "dvc.yaml does not track:\n" + "\n".join(missing)


def _globals_used(value) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_globals_used(v) for v in value.values()))
    if isinstance(value, str) and value.startswith("${globals:"):
        return {value.removeprefix("${globals:").removesuffix("}").split(",")[0]}
    return set()
