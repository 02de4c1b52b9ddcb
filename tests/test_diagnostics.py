"""The diagnostics' shared helpers and the building blocks of scripts/bc_ceiling.py."""

import importlib.util
from pathlib import Path

import pytest
import torch

from fog_pipeline.diagnostics import with_overrides

# scripts/ is not a package: load bc_ceiling.py once, as a module.
SPEC = importlib.util.spec_from_file_location(
    "bc_ceiling", Path(__file__).resolve().parents[1] / "scripts" / "bc_ceiling.py"
)
bc_ceiling = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bc_ceiling)


def test_overrides_set_nested_keys_as_yaml_without_touching_the_input():
    section = {"fog": {"gamma": 0.99, "horizon": 16}, "prior": {"weight": 1.0}}
    changed = with_overrides(section, ["fog.gamma=0.9", "prior.weight=1e-1", "new.key=[1, 2]"])
    assert changed == {
        "fog": {"gamma": 0.9, "horizon": 16},
        "prior": {"weight": 0.1},
        "new": {"key": [1, 2]},
    }
    assert section["fog"]["gamma"] == 0.99


@pytest.mark.parametrize("pair", ["fog.gamma", "=3"])
def test_malformed_override_names_the_expected_form(pair):
    with pytest.raises(SystemExit, match="key.sub=value"):
        with_overrides({}, [pair])


def test_random_shift_moves_both_frames_of_a_sample_by_the_same_whole_pixels():
    torch.manual_seed(0)
    image = torch.rand(64, 6, 8, 8)
    shifted = bc_ceiling.random_shift(image, 2)
    padded = torch.nn.functional.pad(image, (2,) * 4, mode="replicate")
    offsets = set()
    for sample in range(len(image)):
        found = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(shifted[sample], padded[sample, :, dy : dy + 8, dx : dx + 8])
        ]
        assert len(found) == 1  # one crop of the padded stack, every channel alike
        offsets |= set(found)
    assert len(offsets) > 10  # the shifts vary from sample to sample


def test_camera_encoder_shifts_only_while_training():
    encoder = bc_ceiling.CameraEncoder(6 * 64 + 3, 6 * 64, 8, "keypoints", shift=2)
    x = torch.rand(4, 6 * 64 + 3)
    encoder.eval()
    assert torch.equal(encoder(x), encoder(x))
    encoder.train()
    assert not torch.equal(encoder(x), encoder(x))


def test_spatial_softmax_returns_each_channels_peak_position():
    features = torch.full((1, 2, 5, 9), -1e4)
    features[0, 0, 1, 6] = 0.0  # row 1 of 5, column 6 of 9
    features[0, 1, 4, 0] = 0.0
    keypoints = bc_ceiling.SpatialSoftmax()(features)
    # x of both channels, then y of both, in [-1, 1]
    assert torch.allclose(keypoints, torch.tensor([[0.5, -1.0, -0.5, 1.0]]))
