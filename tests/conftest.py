from __future__ import annotations

import torch

# Tests are deterministic and share 2 cores: keep torch from oversubscribing when pytest-xdist runs workers.
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def pytest_collection_modifyitems(config, items) -> None:
    """The suite runs on two pytest-xdist workers (pyproject's addopts: --dist loadgroup). A test file's tests stay
    together on one worker (their module fixtures are made once: a deploy, a device, a model), except where a test
    names a finer group itself (the registry and parity cases: one group per variant), which spreads the two
    longest files over both workers."""
    import pytest

    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
