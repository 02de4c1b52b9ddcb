"""Frame layout conversions between the recorded data and the models.

Data: uint8 (..., H, W, 3) in [0, 255]. Models: float (..., 3, H, W) in [-1, 1], the range
EDM's sigma_data = 0.5 is tuned for.
"""

from __future__ import annotations

import numpy as np
import torch


def to_model(
    frames: np.ndarray | torch.Tensor, device: str | torch.device | None = None
) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1]."""
    if isinstance(frames, np.ndarray):
        # The dtype change copies, so read-only memory maps convert without a warning.
        frames = torch.from_numpy(np.asarray(frames, dtype=np.float32))
    if frames.shape[-1] != 3:
        raise ValueError(f"expected frames shaped (..., H, W, 3), got {tuple(frames.shape)}")
    frames = frames.to(device=device, dtype=torch.float32)
    return (frames / 127.5 - 1.0).movedim(-1, -3).contiguous()


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """float (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3); values outside are clipped."""
    if frames.shape[-3] != 3:
        raise ValueError(f"expected frames shaped (..., 3, H, W), got {tuple(frames.shape)}")
    pixels = ((frames.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round()
    return pixels.to(torch.uint8).movedim(-3, -1).cpu().numpy()
