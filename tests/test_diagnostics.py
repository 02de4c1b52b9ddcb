"""The diagnostics' shared helpers (the scripts themselves need trained artifacts)."""

import pytest

from fog_pipeline.diagnostics import with_overrides


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
