"""DDPM forward process q(x_t | x_0) with linear betas."""
from __future__ import annotations

import torch


class NoiseSchedule:
    """Linear beta schedule (1e-4 .. 0.02 over ``timesteps`` steps) and forward sampling."""

    def __init__(self, timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        self.timesteps = timesteps
        betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.sqrt_ab = alphas_cumprod.sqrt().float()
        self.sqrt_1m_ab = (1.0 - alphas_cumprod).sqrt().float()

    def sample_timesteps(self, batch: int, generator: torch.Generator = None) -> torch.Tensor:
        return torch.randint(0, self.timesteps, (batch,), generator=generator)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise, per sample."""
        shape = (-1,) + (1,) * (x0.dim() - 1)
        a = self.sqrt_ab.to(x0.device)[t].view(shape)
        b = self.sqrt_1m_ab.to(x0.device)[t].view(shape)
        return a * x0 + b * noise
