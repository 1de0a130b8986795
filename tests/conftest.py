from __future__ import annotations

import torch

# Tests are deterministic and share 2 cores: keep torch from oversubscribing when pytest-xdist runs workers.
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
