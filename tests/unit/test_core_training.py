"""Masked-diffusion pretraining and few-shot fine-tuning, end to end on tiny synthetic scenes."""
import copy

import numpy as np
import pytest
import torch

from diffclip_qgis.core.config import PretrainConfig
from diffclip_qgis.core.diffusion import NoiseSchedule
from diffclip_qgis.core.finetune import class_balance, finetune
from diffclip_qgis.core.infer import Predictor
from diffclip_qgis.core.metrics import assess
from diffclip_qgis.core.model import DiffCLIP
from diffclip_qgis.core.pipeline import fewshot_classifier, pretrain_encoder
from diffclip_qgis.core.pretrain import masked_diffusion_loss, pretrain
from diffclip_qgis.core.progress import Callback, Cancelled
from diffclip_qgis.core.source import ArraySource
from diffclip_qgis.core.threads import cpu_threads
from diffclip_qgis.core.training import batches
from diffclip_qgis.core.windows import extract_windows, fit_input_stats, sample_valid_pixels

from core_fixtures import (CLASSES, CPU, cached_classifier, multimodal_scene, pick_shots,  # noqa: F401
                           single_thread, tiny_config, tiny_preset)


@pytest.fixture(scope="module")
def scene_windows():
    """Normalised 5 x 5 windows of both modalities at 256 valid pixels of the structured scene."""
    spectral, height, _ = multimodal_scene()
    source = ArraySource([spectral, height])
    stats = fit_input_stats(source)
    rows, cols = sample_valid_pixels(source, stats, 256, seed=0)
    windows, valid = extract_windows(source, stats, rows, cols, 5)
    assert valid.all()
    return windows


def _eval_loss(net, batch, cfg, seed=123):
    """The pretraining loss on a fixed batch with fixed t, noise and masks (same generator seed)."""
    net.eval()
    with torch.no_grad():
        return masked_diffusion_loss(net, batch, NoiseSchedule(cfg.timesteps), cfg,
                                     torch.Generator().manual_seed(seed)).item()


# --------------------------------------------------------------------------- pretraining

def test_pretraining_lowers_reconstruction_loss(scene_windows):
    cfg = PretrainConfig(epochs=20, batch_size=32, lr=3e-3, seed=0)
    torch.manual_seed(0)
    net = DiffCLIP([6, 1], tiny_config(5))
    batch = [torch.from_numpy(w[:64]) for w in scene_windows]
    assert _eval_loss(net, batch, cfg) == _eval_loss(net, batch, cfg)     # the comparison is exact
    before = _eval_loss(net, batch, cfg)
    # what predicting each band's mean everywhere would score: (1 + 0.1) * variance, per modality
    constant = sum((1 + cfg.masked_loss_weight) * ((b - torch.from_numpy(w).mean(dim=(0, 2, 3), keepdim=True)) ** 2)
                   .mean().item() for b, w in zip(batch, scene_windows))
    text_before = copy.deepcopy(net.text.state_dict())
    history = pretrain(net, scene_windows, cfg, CPU)
    after = _eval_loss(net, batch, cfg)
    assert len(history) == 20 and all(np.isfinite(history))
    assert history[-1] < 0.7 * history[0]
    assert after < 0.6 * before, (before, after)
    assert after < 0.8 * constant, (constant, after)   # it learned the structure, not only the band means
    # pretraining leaves the text side alone
    for k, v in net.text.state_dict().items():
        assert torch.equal(v, text_before[k]), k
    assert not net.training


def _mask_and_recon(net, windows, cfg, seed=7):
    """Run the loss once while recording which tokens were masked and what the decoders output."""
    encoded, decoded, recon = [], [], []
    hooks = [net.encoder.register_forward_pre_hook(lambda mod, args: encoded.append(args[0].shape[1]))]
    hooks += [d.register_forward_pre_hook(lambda mod, args: decoded.append(args[0][:, 1:].detach().clone()))
              for d in net.decoders]
    hooks += [d.register_forward_hook(lambda mod, args, out: recon.append(out.detach().clone())) for d in net.decoders]
    try:
        loss = _eval_loss(net, windows, cfg, seed)
    finally:
        for h in hooks:
            h.remove()
    masks = [(tok == stem.mask_token.detach()).all(dim=2) for tok, stem in zip(decoded, net.stems)]
    for mask, n_encoded in zip(masks, encoded):     # the encoder saw the visible tokens only
        assert (mask.shape[1] - mask.sum(dim=1) == n_encoded).all()
    return loss, masks, recon


@pytest.mark.parametrize("ratio, expected", [(0.0, 1), (0.3, 8), (0.7, 18), (1.0, 24)])
def test_mask_ratio_is_honoured(scene_windows, ratio, expected):
    """round(ratio * 25) tokens of every 5 x 5 window are masked, at least 1 and at most 24."""
    torch.manual_seed(0)
    net = DiffCLIP([6, 1], tiny_config(5))
    batch = [torch.from_numpy(w[:16]) for w in scene_windows]
    _, masks, _ = _mask_and_recon(net, batch, PretrainConfig(mask_ratio=ratio))
    for mask in masks:
        assert mask.shape == (16, 25)
        assert mask.sum(dim=1).tolist() == [expected] * 16
        if 1 < expected < 24:
            assert len({tuple(row.tolist()) for row in mask}) > 1    # a random mask per sample


@pytest.mark.parametrize("weight", [0.1, 1.0, 0.0])
def test_loss_is_visible_mse_plus_weighted_masked_mse(scene_windows, weight):
    torch.manual_seed(0)
    net = DiffCLIP([6, 1], tiny_config(5))
    batch = [torch.from_numpy(w[:16]) for w in scene_windows]
    cfg = PretrainConfig(mask_ratio=0.6, masked_loss_weight=weight)
    loss, masks, recon = _mask_and_recon(net, batch, cfg)
    expected = 0.0
    for x0, mask, out in zip(batch, masks, recon):
        err = ((out - x0.flatten(2).transpose(1, 2)) ** 2).mean(dim=2)
        expected += err[~mask].mean().item() + weight * err[mask].mean().item()
    assert loss == pytest.approx(expected, rel=1e-5)
    assert PretrainConfig().masked_loss_weight == 0.1


def test_masked_pixels_never_reach_the_encoder_and_the_mask_token_learns(scene_windows):
    """Changing the masked pixels (same masks, noise and t) changes neither what the encoder sees nor the
    reconstruction; the visible pixels do change it. The mask token gets a gradient."""
    torch.manual_seed(0)
    net = DiffCLIP([6, 1], tiny_config(5))
    batch = [torch.from_numpy(w[:16]) for w in scene_windows]
    cfg = PretrainConfig(mask_ratio=0.6)
    _, masks, recon = _mask_and_recon(net, batch, cfg)
    hidden = [x + 50.0 * m.reshape(x.shape[0], 1, *x.shape[2:]) for x, m in zip(batch, masks)]
    _, masks_again, recon_hidden = _mask_and_recon(net, hidden, cfg)
    shown = [x + 50.0 * (~m).reshape(x.shape[0], 1, *x.shape[2:]) for x, m in zip(batch, masks)]
    _, _, recon_shown = _mask_and_recon(net, shown, cfg)
    for a, b, c, m, m2 in zip(recon, recon_hidden, recon_shown, masks, masks_again):
        assert torch.equal(m, m2)
        torch.testing.assert_close(a, b)
        assert (a - c).abs().max() > 1e-3
    net.train()
    masked_diffusion_loss(net, batch, NoiseSchedule(cfg.timesteps), cfg, torch.Generator().manual_seed(1)).backward()
    for stem in net.stems:
        assert stem.mask_token.grad is not None and stem.mask_token.grad.abs().sum() > 0


def test_a_batch_of_one_keeps_two_visible_tokens(scene_windows):
    """The band reduction's batch norm needs two values per channel: a batch of one window keeps two visible."""
    torch.manual_seed(0)
    net = DiffCLIP([6, 1], tiny_config(5)).train()
    one = [torch.from_numpy(w[:1]) for w in scene_windows]
    cfg = PretrainConfig(mask_ratio=0.95)
    loss = masked_diffusion_loss(net, one, NoiseSchedule(cfg.timesteps), cfg, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss)
    _, masks, _ = _mask_and_recon(net, one, cfg)
    assert [m.sum().item() for m in masks] == [23, 23]


def test_pretraining_can_be_cancelled(scene_windows):
    net = DiffCLIP([6, 1], tiny_config(5))
    with pytest.raises(Cancelled):
        pretrain(net, scene_windows, PretrainConfig(epochs=3), CPU, Callback(cancelled=lambda: True))


def test_pretrain_encoder_records_inputs_and_report():
    spectral, height, _ = multimodal_scene()
    messages = []
    preset = tiny_preset(pretrain_epochs=2, sample_count=100)
    trained = pretrain_encoder(ArraySource([spectral, height]), preset, CPU, callback=Callback(log=messages.append))
    assert trained.pretrain_window == 5 and trained.window is None and not trained.is_classifier
    assert [m.band_count for m in trained.modalities] == [6, 1]
    assert [m.name for m in trained.modalities] == ["modality 1", "modality 2"]
    assert trained.report["pretrain_samples"] == 100 and len(trained.report["pretrain_loss"]) == 2
    assert any("Pretraining on 100 unlabelled 5 x 5 windows" in m for m in messages)


# --------------------------------------------------------------------------- fine-tuning

def test_fewshot_learns_a_task_that_needs_both_modalities():
    """Classes 1 and 2 have the same spectrum and differ only in height; 8 shots per class."""
    trained, source, labels, (rows, cols, _) = cached_classifier()
    pred, conf = Predictor(trained, CPU).predict(source)
    held_out = np.ones(labels.shape, dtype=bool)
    held_out[rows, cols] = False
    acc = assess(labels[held_out], pred[held_out], [1, 2, 3])
    assert acc.overall >= 0.9, acc.matrix
    assert min(acc.producers) >= 0.8, acc.matrix        # the two same-spectrum classes are told apart
    assert trained.window == 3 and [c.id for c in trained.classes] == [1, 2, 3]
    assert trained.report["samples_per_class"] == {"low meadow": 8, "tall forest": 8, "water": 8}
    assert trained.report["finetune_loss"][-1] < trained.report["finetune_loss"][0]
    assert np.isfinite(conf).all() and (conf > 1 / 3).all() and (conf <= 1).all()


def test_fewshot_from_a_pretrained_encoder_leaves_it_untouched():
    spectral, height, labels = multimodal_scene(seed=3)
    source = ArraySource([spectral, height])
    pretrained = pretrain_encoder(source, tiny_preset(pretrain_epochs=1, sample_count=64), CPU)
    before = {k: v.clone() for k, v in pretrained.network.state_dict().items()}
    rows, cols, ids = pick_shots(labels, 3, seed=3)
    trained = fewshot_classifier(source, rows, cols, ids, CLASSES, tiny_preset(finetune_epochs=3), CPU,
                                 pretrained=pretrained)
    assert trained.network is not pretrained.network
    for k, v in pretrained.network.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert pretrained.window is None and trained.window == 3
    assert trained.report["pretrain_samples"] == 64 and len(trained.report["finetune_loss"]) == 3
    # the decoders are not fine-tuned
    for k, v in trained.network.decoders.state_dict().items():
        assert torch.equal(v, before["decoders." + k]), k


def test_window_auto_picks_a_candidate_by_cross_validation():
    spectral, height, labels = multimodal_scene(seed=1)
    source = ArraySource([spectral, height])
    rows, cols, ids = pick_shots(labels, 6, seed=1)
    phases = []
    preset = tiny_preset(window="auto", model_window=5, pretrain_epochs=0, finetune_epochs=12)
    trained = fewshot_classifier(source, rows, cols, ids, CLASSES, preset, CPU,
                                 callback=Callback(progress=lambda phase, f, msg: phases.append(phase)))
    scores = trained.report["window_scores"]
    assert set(scores) == {3, 5}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert trained.window in (3, 5)
    best = max(scores.values())
    assert trained.window == min(s for s, v in scores.items() if v >= best - 0.01)
    assert "choosing window" in phases and phases[-1] == "fine-tuning"


def test_cross_validation_runs_its_fine_tunes_side_by_side_with_the_same_scores(monkeypatch):
    """One fine-tune per thread torch may use, each on one thread: the scores and hits do not depend on how many
    run at once, and a cancel or a failed fold stops the others within a step."""
    import threading

    from diffclip_qgis.core import pipeline

    spectral, height, labels = multimodal_scene(seed=1)
    source = ArraySource([spectral, height])
    stats = fit_input_stats(source)
    rows, cols, ids = pick_shots(labels, 6, seed=1)
    windows = extract_windows(source, stats, rows, cols, 5)[0]
    y = ids - 1
    preset = tiny_preset(model_window=5, finetune_epochs=12)
    net = DiffCLIP([s.shape[1] for s in windows], preset.model)
    seen, completed, finetune_once = set(), [], pipeline.finetune

    def recorded(*args, **kwargs):
        seen.add((threading.get_ident(), torch.get_num_threads()))
        completed.append(finetune_once(*args, **kwargs))

    monkeypatch.setattr(pipeline, "finetune", recorded)
    runs = {}
    for threads in (1, 3):
        seen.clear()
        with cpu_threads(threads):
            runs[threads] = pipeline.cross_validate(net, windows, y, ["a", "b", "c"], [3, 5], preset, CPU)
            assert {n for _, n in seen} == {1} and len({t for t, _ in seen}) == threads
            assert torch.get_num_threads() == threads
    assert runs[1][0] == runs[3][0] and all((runs[1][1][s] == runs[3][1][s]).all() for s in (3, 5))

    asked, completed[:] = [], []
    cancel = Callback(cancelled=lambda: asked.append(1) or len(asked) > 4)   # each fold step asks
    with pytest.raises(Cancelled):
        pipeline.cross_validate(net, windows, y, ["a", "b", "c"], [3, 5], preset, CPU, cancel)
    assert completed == []   # asked only between folds, five folds would have run first

    calls = iter(range(len(y)))

    def failing(*args, **kwargs):   # the first fold fails at once; the two beside it stop at their next step
        if next(calls) == 0:
            raise RuntimeError("out of memory")
        recorded(*args, **kwargs)

    monkeypatch.setattr(pipeline, "finetune", failing)
    with cpu_threads(3), pytest.raises(RuntimeError, match="out of memory"):
        pipeline.cross_validate(net, windows, y, ["a", "b", "c"], [3, 5], preset, CPU)
    assert completed == []


def test_preset_that_skips_pretraining_fine_tunes_a_fresh_encoder():
    spectral, height, labels = multimodal_scene(seed=1)
    rows, cols, ids = pick_shots(labels, 4, seed=1)
    messages = []
    preset = tiny_preset(window=3, pretrain_epochs=3, finetune_epochs=2)
    preset.pretrain_before_fewshot = False
    trained = fewshot_classifier(ArraySource([spectral, height]), rows, cols, ids, CLASSES, preset, CPU,
                                 callback=Callback(log=messages.append))
    assert trained.report["pretrain_loss"] == [] and len(trained.report["finetune_loss"]) == 2
    assert any("No pretraining" in m for m in messages)


def test_finetune_on_pixels_alone_with_one_sample_more_than_a_batch():
    """A 1 x 1 window and 33 labels at batch size 32: the last batch of one used to stop batch norm."""
    net = DiffCLIP([2], tiny_config(1))
    rng = np.random.default_rng(0)
    windows = [rng.normal(size=(33, 2, 1, 1)).astype(np.float32)]
    cfg = tiny_preset(finetune_epochs=2).finetune
    cfg.unlabelled = False
    assert len(finetune(net, windows, np.arange(33) % 3, ["a", "b", "c"], cfg, CPU)) == 2


def test_finetune_runs_on_one_cpu_thread_and_gives_the_others_back():
    """Its small steps are faster on one thread (core/training.py); classification after it uses them all."""
    net = DiffCLIP([2], tiny_config(1))
    embed, threads = net.embed_windows, []
    net.embed_windows = lambda windows: threads.append(torch.get_num_threads()) or embed(windows)
    windows = [np.random.default_rng(0).normal(size=(6, 2, 1, 1)).astype(np.float32)]
    with cpu_threads(2):
        finetune(net, windows, np.arange(6) % 3, ["a", "b", "c"], tiny_preset(finetune_epochs=2).finetune, CPU)
        assert set(threads) == {1} and torch.get_num_threads() == 2


@pytest.mark.parametrize("counts", [(40, 10, 4), (3, 2, 2), (5, 5, 5)])
def test_every_class_weighs_the_same_in_the_labelled_loss(counts):
    """Balanced once: drawn as often (counts far apart) or weighted (close), never both (rare classes 10x)."""
    labels = np.repeat(np.arange(3), counts)
    draw_weights, loss_weights = class_balance(labels, 3)
    rng = np.random.default_rng(0)
    drawn = np.concatenate([idx for _ in range(2000) for idx in batches(len(labels), 16, rng, draw_weights)])
    weight = np.bincount(labels[drawn], minlength=3) * loss_weights
    assert np.allclose(weight / weight.sum(), 1 / 3, atol=0.01)


def test_finetune_needs_every_class():
    net = DiffCLIP([2], tiny_config(3))
    windows = [np.zeros((3, 2, 3, 3), np.float32)]
    with pytest.raises(ValueError, match=r"Classes \[1\] have no training samples"):
        finetune(net, windows, np.array([0, 0, 2]), ["a", "b", "c"], tiny_preset().finetune, CPU)
