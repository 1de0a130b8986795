"""How much a network amplifies a small perturbation: Gaussian noise at a chosen SQNR added to one module's
output, and the SQNR that comes out at the image embedding.

It tells quantization error that is ours from a network that is simply fragile. INT8 adds roughly 25-45 dB of
noise per layer; a trained network passes that through roughly unchanged, an untrained one (synthetic weights)
can amplify it into noise as large as the signal. Then a low INT8 SQNR says nothing about the quantizer."""
from __future__ import annotations

import numpy as np
import torch


def noise_gain(model: torch.nn.Module, x: np.ndarray, module: str, snr_db: float = 30.0, seed: int = 0) -> float:
    """Embedding SQNR (dB) after adding noise at `snr_db` to the output of `model.<module>` (float, no
    quantization anywhere) for the preprocessed image `x`."""
    generator = torch.Generator().manual_seed(seed)
    target = model.get_submodule(module)

    def add_noise(_mod: torch.nn.Module, _inp: tuple, out: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(out.shape, generator=generator, dtype=out.dtype)
        return out + noise * (out.norm() / noise.norm()) * 10 ** (-snr_db / 20)

    image = torch.from_numpy(x)
    with torch.inference_mode():
        ref = model.encode(image)["image_embeddings"].double()
        handle = target.register_forward_hook(add_noise)
        try:
            got = model.encode(image)["image_embeddings"].double()
        finally:
            handle.remove()
    return float(10 * torch.log10((ref ** 2).sum() / ((ref - got) ** 2).sum()))
