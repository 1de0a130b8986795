from __future__ import annotations

import torch

# Tests are deterministic and timed on 2 cores: torch uses at most two threads in the test process.
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def pytest_collection_modifyitems(config, items) -> None:
    """For runs on pytest-xdist workers (`-n N --dist loadgroup`, optional; the default run is serial): a test
    file's tests stay together on one worker (their module fixtures are made once: a deploy, a device, a model),
    except where a test names a finer group itself (the registry and parity cases: one group per variant), which
    spreads the two longest files over the workers."""
    import pytest

    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
