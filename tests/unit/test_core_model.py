"""The network's shapes and window-agnostic encoder, and the CLIP loss's handling of same-class samples."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from diffclip_qgis.core.finetune import clip_loss, prompt_tokens
from diffclip_qgis.core.model import SHAPE_MIN_BANDS, DiffCLIP, sincos_2d, spectral_shape

from core_fixtures import single_thread, tiny_config  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def net7():
    torch.manual_seed(0)
    return DiffCLIP([6, 1], tiny_config(window=7)).eval()


@pytest.mark.parametrize("size", [3, 5, 7])
def test_encoder_built_for_7_embeds_smaller_windows(net7, size):
    g = torch.Generator().manual_seed(size)
    windows = [torch.randn(4, 6, size, size, generator=g), torch.randn(4, 1, size, size, generator=g)]
    with torch.no_grad():
        emb = net7.embed_windows(windows)
        assert emb.shape == (4, 16)
        assert torch.isfinite(emb).all()
        torch.testing.assert_close(emb.norm(dim=1), torch.ones(4))
        for m, bands in enumerate((6, 1)):
            features = net7.encoder(net7.tokens_from_windows(m, windows[m]), size)
            assert features.shape == (4, 1 + size * size, 16)
            assert net7.decoders[m](features, size).shape == (4, size * size, bands)


def test_window_embedding_depends_on_both_modalities_and_on_neighbours(net7):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 6, 5, 5, generator=g), torch.randn(2, 1, 5, 5, generator=g)
    with torch.no_grad():
        base = net7.embed_windows([a, b])
        b2 = b.clone()
        b2[:, :, 2, 2] += 3.0                        # the second modality's centre pixel
        a2 = a.clone()
        a2[:, :, 0, 0] += 3.0                        # a corner neighbour of the first modality
        assert (net7.embed_windows([a, b2]) - base).abs().max() > 1e-3
        assert (net7.embed_windows([a2, b]) - base).abs().max() > 1e-3


def test_positions_are_relative_to_the_window_centre():
    """A 3 x 3 window's positions are the central 3 x 3 of a 7 x 7 window's, so one encoder fits all sizes."""
    big = sincos_2d(7, 16).view(7, 7, 16)
    small = sincos_2d(3, 16).view(3, 3, 16)
    torch.testing.assert_close(small, big[2:5, 2:5])
    assert not torch.allclose(big[0, 0], big[3, 3])
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_2d(3, 18)


def test_heads_must_divide_width():
    cfg = tiny_config(5)
    cfg.heads = 3
    with pytest.raises(ValueError, match="divisible"):
        DiffCLIP([3], cfg)


def test_text_embedding_per_prompt(net7):
    ids, lengths = prompt_tokens(net7, ["a patch of forest.", "a patch of water.", "a patch of forest."], "cpu")
    with torch.no_grad():
        text = net7.text_embedding(ids, lengths)
    assert text.shape == (3, 16)
    torch.testing.assert_close(text[0], text[2])
    assert not torch.allclose(text[0], text[1])
    torch.testing.assert_close(text.norm(dim=1), torch.ones(3))


def test_prompt_embedding_does_not_depend_on_the_longer_prompts_beside_it(net7):
    """Padding after the longest prompt is cut off; a prompt's embedding must not change with it."""
    short = "a patch of water."
    long = "a very long description of a dense mixed forest with tall oak trees and an understorey of shrubs."
    with torch.no_grad():
        alone = net7.text_embedding(*prompt_tokens(net7, [short], "cpu"))
        beside = net7.text_embedding(*prompt_tokens(net7, [short, long], "cpu"))
    torch.testing.assert_close(alone[0], beside[0])


def test_linear_head_replaces_prompts(net7):
    net = copy.deepcopy(net7)
    net.set_linear_head(4)
    emb = F.normalize(torch.randn(5, 16), dim=1)
    assert net.logits(emb, None).shape == (5, 4)


def test_class_scores_stay_float32_under_bfloat16_autocast(net7):
    """bf16 prediction runs the encoder in bf16 but the head in float32: close scores would swap classes."""
    tokens = [torch.randn(8, 16, generator=torch.Generator().manual_seed(m)) for m in range(2)]
    text = F.normalize(torch.randn(4, 16, generator=torch.Generator().manual_seed(2)), dim=1)
    with torch.no_grad():
        full = net7.logits(net7.image_embedding(tokens), text)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = net7.logits(net7.image_embedding([t.bfloat16() for t in tokens]), text.bfloat16())
    assert mixed.dtype == torch.float32
    assert torch.allclose(mixed, full, atol=0.05)   # the tokens' own bf16 rounding only


# --------------------------------------------------------------------------- CLIP loss

SCALE = 20.0
TEXT = torch.eye(3, 16)                             # three orthonormal class prompts
LABELS = torch.tensor([0, 0, 1, 2])                 # class 0 appears twice in the batch
WEIGHTS = torch.ones(3)


def _loss(image):
    return clip_loss(SCALE * F.normalize(image, dim=1) @ TEXT.t(), LABELS, WEIGHTS)


def _reference_arange_loss(image):
    """The reference formulation: one prompt per sample, targets arange(B) in both directions."""
    logits = SCALE * F.normalize(image, dim=1) @ TEXT[LABELS].t()
    target = torch.arange(len(LABELS))
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def test_clip_loss_lower_bound_reached_when_same_class_images_coincide():
    """With each image on its class prompt, the loss is at its floor: 0 image->text, and for text->image
    the entropy of the soft target (log 2 for the duplicated class, 0 for the others)."""
    coincide = TEXT[LABELS].clone()
    floor = 0.5 * (0.0 + (math.log(2) + 0 + 0) / 3)
    assert _loss(coincide).item() == pytest.approx(floor, abs=1e-3)
    # The arange formulation cannot reach its own (zero) target: the duplicated sample is scored as a
    # mistake in both directions, so the same ideal embeddings still cost about log 2 per such row.
    assert _reference_arange_loss(coincide).item() > 0.9 * math.log(2) / 2


def test_clip_loss_does_not_push_same_class_samples_apart():
    coincide = TEXT[LABELS].clone()
    base = _loss(coincide).item()
    g = torch.Generator().manual_seed(0)
    for _ in range(20):   # moving one of the two class-0 images away, in any direction, never helps
        moved = coincide.clone()
        moved[1] += 0.3 * torch.randn(16, generator=g)
        assert _loss(moved).item() > base
    image = coincide.clone().requires_grad_(True)
    _loss(image).backward()
    torch.testing.assert_close(image.grad[0], image.grad[1])   # the two duplicates move together


def test_clip_loss_optimum_from_random_start_keeps_same_class_samples_together():
    torch.manual_seed(0)
    coords = torch.randn(4, 3, requires_grad=True)       # embeddings in the span of the prompts
    opt = torch.optim.Adam([coords], lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        loss = _loss(F.pad(coords, (0, 13)))
        loss.backward()
        opt.step()
    unit = F.normalize(F.pad(coords.detach(), (0, 13)), dim=1)
    similarity = unit @ TEXT.t()
    assert similarity.argmax(dim=1).tolist() == LABELS.tolist()
    # the two class-0 samples end equally close to their prompt: neither is pushed away from it
    assert float(similarity[0, 0]) == pytest.approx(float(similarity[1, 0]), abs=1e-2)
    assert loss.item() == pytest.approx(0.5 * math.log(2) / 3, abs=2e-3)   # the floor


def test_clip_loss_ignores_prompts_absent_from_the_batch():
    logits = SCALE * TEXT[torch.tensor([0, 1])] @ TEXT.t()                # class 2 not in this batch
    loss = clip_loss(logits, torch.tensor([0, 1]), WEIGHTS)
    assert torch.isfinite(loss) and loss.item() < 1e-3


def test_spectral_shape_ignores_illumination_but_keeps_the_spectrum():
    """A shadow scales every band of a pixel by one factor: the shape channels must not change."""
    signal = torch.rand(3, 16, 2, 2) * 0.8 + 0.2          # positive signal per band
    scaled = lambda s: 2.0 * s - 1.0                       # the scaling with low = 0, high = 1  # noqa: E731
    sunlit, shaded = spectral_shape(scaled(signal)), spectral_shape(scaled(0.25 * signal))
    assert torch.allclose(sunlit, shaded, atol=1e-5)
    other = spectral_shape(scaled(signal.flip(1)))
    assert (sunlit - other).abs().max() > 0.1


def test_only_spectral_modalities_get_shape_channels():
    net = DiffCLIP([SHAPE_MIN_BANDS, SHAPE_MIN_BANDS - 1], tiny_config())
    assert net.stems[0].reduce[0].in_channels == 2 * SHAPE_MIN_BANDS
    assert net.stems[1].reduce[0].in_channels == SHAPE_MIN_BANDS - 1


def test_class_token_shortcut_equals_the_full_encoder(net7):
    """Classification reads only the class token: the last block's shortcut gives the same features."""
    torch.manual_seed(0)
    tokens = torch.randn(6, 25, net7.cfg.dim, requires_grad=True)
    full = net7.encoder(tokens, 5)[:, 0]
    short = net7.encoder.class_token(tokens, 5)
    assert torch.allclose(full, short, atol=1e-5)
    grad_full, = torch.autograd.grad(full.sum(), tokens)
    grad_short, = torch.autograd.grad(short.sum(), tokens)
    assert torch.allclose(grad_full, grad_short, atol=1e-5)   # fine-tuning uses it too


def test_encoder_on_a_subset_of_tokens_keeps_their_positions(net7):
    """Pretraining encodes only the visible tokens: each keeps its own window position, so a
    permuted subset gives the same features, permuted, and every position gives the full encoder."""
    torch.manual_seed(0)
    tokens = torch.randn(2, 25, net7.cfg.dim)
    with torch.no_grad():
        full = net7.encoder(tokens, 5)
        everything = net7.encoder(tokens, 5, keep=torch.arange(25).expand(2, -1))
        assert torch.allclose(full, everything, atol=1e-6)
        keep = torch.tensor([[3, 17, 8, 0], [24, 1, 12, 5]])
        subset = net7.encoder(tokens[torch.arange(2)[:, None], keep], 5, keep=keep)
        order = keep.argsort(dim=1)
        again = net7.encoder(tokens[torch.arange(2)[:, None], keep.sort(dim=1).values], 5, keep=keep.sort(dim=1).values)
        assert torch.allclose(subset[:, 1:][torch.arange(2)[:, None], order], again[:, 1:], atol=1e-5)
        assert torch.allclose(subset[:, 0], again[:, 0], atol=1e-5)
        wrong = net7.encoder(tokens[torch.arange(2)[:, None], keep], 5, keep=keep.flip(1))
        assert not torch.allclose(subset[:, 0], wrong[:, 0], atol=1e-3)   # positions matter
