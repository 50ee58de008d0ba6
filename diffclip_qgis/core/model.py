"""The DiffCLIP network: per-modality stems, a shared encoder, per-modality decoders, a text encoder.

Every modality's window becomes tokens (one per pixel) through its own band reduction and
token embedding; one transformer encoder, shared by all modalities, turns each token
sequence plus a class token into features. Per-modality decoders reconstruct the clean
window (pretraining); the concatenated class tokens, projected and L2-normalised, are
compared with the text embeddings of the class prompts (fine-tuning and prediction).
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig


def sincos_2d(window: int, dim: int) -> torch.Tensor:
    """Fixed 2D sine-cosine embedding of positions relative to the window centre, (window**2, dim)."""
    if dim % 4:
        raise ValueError(f"Token width must be a multiple of 4 for 2D positions; got {dim}.")
    r = window // 2
    coords = torch.arange(-r, r + 1, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    quarter = dim // 4
    freqs = 1.0 / (100.0 ** (torch.arange(quarter, dtype=torch.float32) / quarter))
    parts = []
    for c in (yy.reshape(-1), xx.reshape(-1)):
        angles = c[:, None] * freqs[None, :]
        parts += [angles.sin(), angles.cos()]
    return torch.cat(parts, dim=1)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of diffusion timesteps, (batch, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class Attention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention``."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"Width {dim} must be divisible by the number of heads {heads}.")
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))

    def first_query(self, x: torch.Tensor) -> torch.Tensor:
        """The output of the first token only (B, 1, d): its query against every key, no other queries."""
        b, n, d = x.shape
        q = F.linear(x[:, :1], self.qkv.weight[:d], self.qkv.bias[:d]).view(b, 1, self.heads, d // self.heads)
        k, v = F.linear(x, self.qkv.weight[d:], self.qkv.bias[d:]).view(b, n, 2, self.heads, d // self.heads).permute(
            2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k, v)
        return self.proj(out.transpose(1, 2).reshape(b, 1, d))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), causal)
        return x + self.mlp(self.norm2(x))

    def first_token(self, x: torch.Tensor) -> torch.Tensor:
        """``forward(x)[:, :1]`` without computing the other tokens' outputs."""
        first = x[:, :1] + self.attn.first_query(self.norm1(x))
        return first + self.mlp(self.norm2(first))


SHAPE_MIN_BANDS = 4   # modalities with this many bands or more are spectral: they get shape channels


def spectral_shape(x: torch.Tensor) -> torch.Tensor:
    """Brightness-free spectral shape of scaled bands (B, bands, H, W): centred log of ``x + 1``.

    Scaled bands are about ``2 x / (high - low) - 1`` with ``low`` near zero for reflectance or
    radiance, so ``x + 1`` is proportional to the signal per band. A shadow or a slope multiplies
    every band of a pixel by one factor, which centring the log across bands removes: shaded
    grass keeps the shape of grass.
    """
    logs = x.clamp(min=-0.98).add_(1.0).log_()    # one new tensor: whole tiles pass through here
    return logs.sub_(logs.mean(dim=1, keepdim=True))


class ModalityStem(nn.Module):
    """Band reduction (1x1 conv, BN, ReLU, twice) and per-pixel token embedding of one modality.

    Spectral modalities (at least ``SHAPE_MIN_BANDS`` bands) see their bands and their
    brightness-free shape, so the network can separate albedo from illumination.
    """

    def __init__(self, bands: int, cfg: ModelConfig):
        super().__init__()
        c = cfg.reduce_channels
        self.spectral = bands >= SHAPE_MIN_BANDS
        self.reduce = nn.Sequential(
            nn.Conv2d(2 * bands if self.spectral else bands, c, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
        )
        self.embed = nn.Conv2d(c, cfg.dim, 1)
        self.norm = nn.LayerNorm(cfg.dim)
        self.mask_token = nn.Parameter(torch.zeros(cfg.dim))
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, bands, H, W) -> (B, dim, H, W): a per-pixel map, so it can run on whole tiles.

        Tokens are layer-normalised per pixel, so their scale stays comparable to the position
        embedding and to the diffusion noise; only the norm's learnable gain can raise it (by about
        1.2x in 40 epochs of pretraining on the demo).
        """
        if self.spectral:
            x = torch.cat([x, spectral_shape(x)], dim=1)
        return self.norm(self.embed(self.reduce(x)).movedim(1, -1)).movedim(-1, 1)


class SharedEncoder(nn.Module):
    """Transformer over one modality's window tokens plus a class token carrying the timestep."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.dim = cfg.dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        nn.init.normal_(self.cls_token, std=0.02)
        self.time_mlp = nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self._pos_cache = {}

    def positions(self, window: int, device, dtype) -> torch.Tensor:
        key = (window, device, dtype)
        if key not in self._pos_cache:
            self._pos_cache[key] = sincos_2d(window, self.dim).to(device=device, dtype=dtype)
        return self._pos_cache[key]

    def _sequence(self, tokens: torch.Tensor, window: int, t: Optional[torch.Tensor],
                  keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        b = tokens.shape[0]
        if t is None:
            t = torch.zeros(b, device=tokens.device)
        cls = self.cls_token.expand(b, -1, -1) + self.time_mlp(timestep_embedding(t, self.dim)).to(tokens.dtype)[:, None]
        pos = self.positions(window, tokens.device, tokens.dtype)
        return torch.cat([cls, tokens + (pos if keep is None else pos[keep])], dim=1)

    def forward(self, tokens: torch.Tensor, window: int, t: Optional[torch.Tensor] = None,
                keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        """tokens (B, window**2, dim) in row-major window order -> features (B, 1 + window**2, dim).

        With ``keep`` (B, n) window positions, tokens are only those n (pretraining's visible
        tokens, in that order) and so are the features after the class token.
        """
        x = self._sequence(tokens, window, t, keep)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def class_token(self, tokens: torch.Tensor, window: int) -> torch.Tensor:
        """``forward(tokens, window)[:, 0]`` at t = 0, without the last block's work on the other tokens.

        Classification reads only the class token: in the last block only its query, its
        attention output and its MLP are needed (all keys and values still are).
        """
        x = self._sequence(tokens, window, None)
        for block in self.blocks[:-1]:
            x = block(x)
        if len(self.blocks):
            x = self.blocks[-1].first_token(x)
        return self.norm(x[:, 0])


class ModalityDecoder(nn.Module):
    """Predicts the clean window of one modality, in its band space, from encoder features."""

    def __init__(self, bands: int, cfg: ModelConfig):
        super().__init__()
        self.dim = cfg.decoder_dim
        self.inp = nn.Linear(cfg.dim, cfg.decoder_dim)
        self.blocks = nn.ModuleList(Block(cfg.decoder_dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.decoder_depth))
        self.norm = nn.LayerNorm(cfg.decoder_dim)
        self.expand = nn.Linear(cfg.decoder_dim, bands)

    def forward(self, features: torch.Tensor, window: int) -> torch.Tensor:
        """features (B, 1 + N, dim) -> reconstruction (B, N, bands)."""
        x = self.inp(features)
        x = torch.cat([x[:, :1], x[:, 1:] + sincos_2d(window, self.dim).to(x)], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.expand(self.norm(x)[:, 1:])


class TextEncoder(nn.Module):
    """A small causal transformer over prompt tokens, trained from scratch as in the paper."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.text_width)
        self.positional_embedding = nn.Parameter(torch.zeros(cfg.context_length, cfg.text_width))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        self.blocks = nn.ModuleList(Block(cfg.text_width, cfg.text_heads, 4.0) for _ in range(cfg.text_layers))
        self.norm = nn.LayerNorm(cfg.text_width)
        self.projection = nn.Linear(cfg.text_width, cfg.embed_dim, bias=False)

    def forward(self, token_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """token_ids (K, L <= context) and lengths (K,) -> unnormalised embeddings (K, embed_dim)."""
        x = self.token_embedding(token_ids) + self.positional_embedding[:token_ids.shape[1]]
        for block in self.blocks:
            x = block(x, causal=True)
        x = self.norm(x)
        end_of_text = x[torch.arange(x.shape[0], device=x.device), lengths - 1]
        return self.projection(end_of_text)


class DiffCLIP(nn.Module):
    """The whole network for a given list of per-modality band counts."""

    def __init__(self, band_counts: Sequence[int], cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.band_counts = list(band_counts)
        self.stems = nn.ModuleList(ModalityStem(b, cfg) for b in self.band_counts)
        self.encoder = SharedEncoder(cfg)
        self.decoders = nn.ModuleList(ModalityDecoder(b, cfg) for b in self.band_counts)
        self.text = TextEncoder(cfg)
        self.image_projection = nn.Linear(cfg.dim * len(self.band_counts), cfg.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.linear_head: Optional[nn.Linear] = None
        self.register_buffer("class_bias", None)   # log prior ratios per class, once estimated

    def set_linear_head(self, n_classes: int, generator: Optional[torch.Generator] = None) -> None:
        """Use a plain linear classifier on the image embedding instead of text prompts (ablation), its weights
        drawn from ``generator`` (as ``nn.Linear`` draws them) where one is given."""
        self.linear_head = nn.Linear(self.cfg.embed_dim, n_classes)
        if generator is not None:
            bound = 1.0 / math.sqrt(self.cfg.embed_dim)
            with torch.no_grad():
                for p in self.linear_head.parameters():
                    p.uniform_(-bound, bound, generator=generator)

    def set_class_bias(self, bias: Optional[torch.Tensor]) -> None:
        """Offsets added to the class scores (scene class proportions); None removes them."""
        self.class_bias = None if bias is None else bias.detach().float().to(self.logit_scale.device)

    def tokens_from_windows(self, m: int, windows: torch.Tensor) -> torch.Tensor:
        """(B, bands, s, s) windows of modality m -> (B, s*s, dim) tokens."""
        return self.stems[m](windows).flatten(2).transpose(1, 2)

    def image_embedding(self, class_tokens: List[torch.Tensor]) -> torch.Tensor:
        """Concatenated per-modality class tokens -> L2-normalised image embedding (float32, as :meth:`logits`)."""
        with _float32(class_tokens[0]):
            return F.normalize(self.image_projection(torch.cat([t.float() for t in class_tokens], dim=1)), dim=-1)

    def embed_windows(self, windows: List[torch.Tensor]) -> torch.Tensor:
        """Clean windows (t = 0), one (B, bands, s, s) tensor per modality -> image embeddings."""
        window = windows[0].shape[-1]
        cls = [self.encoder.class_token(self.tokens_from_windows(m, w), window) for m, w in enumerate(windows)]
        return self.image_embedding(cls)

    def text_embedding(self, token_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(token_ids, lengths), dim=-1)

    def logits(self, image_emb: torch.Tensor, text_emb: Optional[torch.Tensor]) -> torch.Tensor:
        """Class scores (B, K): scaled cosine similarity to the prompts, or the linear head.

        In float32 even under bfloat16 autocast: close scores would swap classes (a third of bf16's
        differences from float32 on the demo came from the head).
        """
        scale = self.logit_scale.clamp(max=math.log(100.0)).exp()
        # Both heads share the learnable temperature, so their posteriors are on the same footing
        # (a linear head on unit-length embeddings would otherwise stay nearly uniform).
        with _float32(image_emb):
            image_emb = image_emb.float()
            if self.linear_head is not None:
                scores = scale * self.linear_head(image_emb)
            else:
                scores = scale * image_emb @ text_emb.float().t()
            return scores if self.class_bias is None else scores + self.class_bias


def _float32(like: torch.Tensor):
    """A block computed in float32 even under autocast, on ``like``'s device."""
    return torch.autocast(like.device.type, enabled=False)
