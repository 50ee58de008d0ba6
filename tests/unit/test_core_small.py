"""Small core pieces: tokenizer, noise schedule, metrics, class lists, normalisation,
augmentation, device choice, presets, batching and the window/tile helpers."""
import json
import os

import numpy as np
import pytest
import torch

from diffclip_qgis.core import tokenizer
from diffclip_qgis.core.augment import dihedral
from diffclip_qgis.core.classes import (DEFAULT_PROMPT_TEMPLATE, PALETTE, ClassInfo, ClassListError,
                                        complete_classes, fill_prompt, load_class_list, match_prompts,
                                        palette_colour, save_class_list)
from diffclip_qgis.core.config import (PRESETS, FinetuneConfig, ModelConfig, config_from_dict, config_to_dict,
                                       fewshot_pretrain_epochs, get_preset, set_fewshot_pretrain_epochs,
                                       set_finetune_epochs)
from diffclip_qgis.core.finetune import epoch_count
from diffclip_qgis.core.device import describe_device, resolve_device
from diffclip_qgis.core.diffusion import NoiseSchedule
from diffclip_qgis.core.metrics import assess
from diffclip_qgis.core.normalize import CLIP, BandStats, fit_stats, usable_bands
from diffclip_qgis.core.progress import Callback, Cancelled
from diffclip_qgis.core.source import ArraySource
from diffclip_qgis.core.training import batches, make_optimizer
from diffclip_qgis.core.windows import extract_windows, iter_boxes, read_tile, window_offsets

from core_fixtures import single_thread  # noqa: F401 (autouse fixture)


# --------------------------------------------------------------------------- tokenizer

def test_tokenizer_layout_and_lengths():
    ids, lengths = tokenizer.encode(["a patch of forest.", "Water"], vocab_size=100, context_length=10)
    assert ids.shape == (2, 10) and ids.dtype == torch.long
    # "a patch of forest." -> 5 tokens (4 words + '.'), plus start and end
    assert lengths.tolist() == [7, 3]
    for row, n in zip(ids, lengths):
        assert row[0] == tokenizer.START and row[n - 1] == tokenizer.END
        assert (row[n:] == tokenizer.PAD).all()
        words = row[1:n - 1]
        assert ((words >= 3) & (words < 100)).all()


def test_tokenizer_same_word_same_id_case_insensitive_and_distinct_words():
    ids, _ = tokenizer.encode(["Forest forest FOREST", "water meadow forest"], vocab_size=8192, context_length=16)
    assert ids[0, 1] == ids[0, 2] == ids[0, 3] == ids[1, 3]
    assert len({int(ids[1, 1]), int(ids[1, 2]), int(ids[1, 3])}) == 3
    assert tokenizer.tokenize_words("Wald, Wiese!") == ["wald", ",", "wiese", "!"]


def test_tokenizer_ids_are_pinned():
    """Saved models depend on these exact ids: they must not change between versions or processes
    (a Python ``hash()`` based tokenizer would differ with every PYTHONHASHSEED)."""
    ids, lengths = tokenizer.encode(["a multimodal fusion patch of a tall forest.", "Gewässer 建筑"], 8192, 16)
    assert ids.tolist() == [
        [1, 4490, 5561, 6387, 3147, 5203, 4490, 7713, 7663, 1627, 2, 0, 0, 0, 0, 0],
        [1, 3446, 7167, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ]
    assert lengths.tolist() == [11, 4]


def test_tokenizer_truncation_keeps_end_token():
    long = " ".join(f"word{i}" for i in range(50))
    ids, lengths = tokenizer.encode([long], vocab_size=500, context_length=8)
    assert lengths.tolist() == [8]
    assert ids[0, 0] == tokenizer.START and ids[0, 7] == tokenizer.END
    # the kept words are the first six
    first, _ = tokenizer.encode([" ".join(f"word{i}" for i in range(6))], vocab_size=500, context_length=8)
    assert torch.equal(ids, first)


# --------------------------------------------------------------------------- diffusion

def _corr(a, b):
    a, b = a.flatten().double(), b.flatten().double()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def test_noise_schedule_ends():
    s = NoiseSchedule(1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(64, 3, 5, 5, generator=g)
    noise = torch.randn(64, 3, 5, 5, generator=g)
    start = s.q_sample(x0, torch.zeros(64, dtype=torch.long), noise)
    assert (start - x0).abs().max() < 0.06            # sqrt(1 - alpha_bar_0) = 0.01
    end = s.q_sample(x0, torch.full((64,), 999, dtype=torch.long), noise)
    assert _corr(end, noise) > 0.999 and abs(_corr(end, x0)) < 0.05
    # variance preserving and monotone
    assert torch.allclose(s.sqrt_ab ** 2 + s.sqrt_1m_ab ** 2, torch.ones(1000), atol=1e-5)
    assert (s.sqrt_ab[1:] < s.sqrt_ab[:-1]).all()


def test_noise_schedule_is_per_sample():
    s = NoiseSchedule(1000)
    x0 = torch.ones(2, 1, 3, 3)
    noise = -torch.ones(2, 1, 3, 3)
    out = s.q_sample(x0, torch.tensor([0, 999]), noise)
    assert torch.allclose(out[0], torch.full((1, 3, 3), float(s.sqrt_ab[0] - s.sqrt_1m_ab[0])))
    assert torch.allclose(out[1], torch.full((1, 3, 3), float(s.sqrt_ab[999] - s.sqrt_1m_ab[999])))
    t = s.sample_timesteps(1000, torch.Generator().manual_seed(1))
    assert t.min() >= 0 and t.max() <= 999 and len(t.unique()) > 400


# --------------------------------------------------------------------------- metrics

def test_assess_hand_computed():
    reference = np.array([1, 1, 1, 1, 2, 2, 2, 3, 3, 0, 2])
    predicted = np.array([1, 1, 1, 2, 2, 2, 1, 3, 0, 3, 0])   # the last three pairs hold a 0: ignored
    acc = assess(reference, predicted)
    assert acc.class_ids == [1, 2, 3]
    np.testing.assert_array_equal(acc.matrix, [[3, 1, 0], [1, 2, 0], [0, 0, 1]])
    assert acc.count == 8
    assert acc.overall == pytest.approx(6 / 8)
    np.testing.assert_allclose(acc.producers, [3 / 4, 2 / 3, 1.0])
    np.testing.assert_allclose(acc.users, [3 / 4, 2 / 3, 1.0])
    assert acc.average == pytest.approx((3 / 4 + 2 / 3 + 1) / 3)
    # expected agreement (4*4 + 3*3 + 1*1) / 64; kappa = (0.75 - 26/64) / (1 - 26/64) = 11/19
    assert acc.kappa == pytest.approx(11 / 19)


def test_assess_with_class_list_and_2d_input():
    reference = np.array([[1, 2], [2, 0]])
    predicted = np.array([[1, 2], [1, 5]])
    acc = assess(reference, predicted, class_ids=[1, 2, 4])
    np.testing.assert_array_equal(acc.matrix, [[1, 0, 0], [1, 1, 0], [0, 0, 0]])
    assert np.isnan(acc.producers[2]) and np.isnan(acc.users[2])
    assert acc.average == pytest.approx((1 + 0.5) / 2)       # classes without reference pixels do not count
    perfect = assess(np.array([1, 2, 2]), np.array([1, 2, 2]))
    assert perfect.overall == 1.0 and perfect.kappa == pytest.approx(1.0)


def test_assess_without_overlap_raises():
    with pytest.raises(ValueError, match="overlap"):
        assess(np.array([0, 1, 0]), np.array([2, 0, 0]))


# --------------------------------------------------------------------------- class lists

def test_class_list_json_round_trip(tmp_path):
    classes = complete_classes([ClassInfo(3, "water", "", "open water"), ClassInfo(1, "Wald", "#112233", "")])
    assert [c.id for c in classes] == [1, 3]
    assert classes[0].colour == "#112233" and classes[1].colour == PALETTE[1]
    assert classes[0].prompt == fill_prompt("Wald") == DEFAULT_PROMPT_TEMPLATE.replace("{name}", "Wald")
    path = tmp_path / "classes.json"
    save_class_list(str(path), classes)
    assert load_class_list(str(path)) == classes
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == "diffclip-classes"
    assert os.listdir(tmp_path) == ["classes.json"]   # no temporary file left behind


def test_class_list_csv_by_name_and_id(tmp_path):
    path = tmp_path / "prompts.csv"
    path.write_text("name,prompt\nforest,\"a dense forest, with trees\"\n2,open water\n\nurban,houses, roads\n",
                    encoding="utf-8")
    entries = load_class_list(str(path))
    assert entries == [ClassInfo(0, "forest", "", "a dense forest, with trees"), ClassInfo(2, "", "", "open water"),
                       ClassInfo(0, "urban", "", "houses, roads")]
    bad = tmp_path / "bad.csv"
    bad.write_text("forest\n", encoding="utf-8")
    with pytest.raises(ClassListError, match="two columns"):
        load_class_list(str(bad))


def test_class_list_bare_list_json_and_color_spelling(tmp_path):
    path = tmp_path / "list.json"
    path.write_text(json.dumps([{"id": 1, "name": "a", "color": "#ffffff"}, {"name": "b", "prompt": "bee"}]))
    assert load_class_list(str(path)) == [ClassInfo(1, "a", "#ffffff", ""), ClassInfo(0, "b", "", "bee")]


@pytest.mark.parametrize("text, message", [
    ('{"classes": [', "not valid JSON"),
    ('{"something": 1}', "no 'classes' list"),
    ('[{"colour": "#000000"}]', "needs an 'id' or a 'name'"),
    ('[{"id": "one", "name": "x"}]', "non-integer id"),
])
def test_class_list_errors(tmp_path, text, message):
    path = tmp_path / "classes.json"
    path.write_text(text)
    with pytest.raises(ClassListError, match=message):
        load_class_list(str(path))


def test_class_list_missing_file(tmp_path):
    with pytest.raises(ClassListError, match="not found"):
        load_class_list(str(tmp_path / "nope.json"))


def test_match_prompts_by_name_for_named_classes_by_id_for_the_others_and_palette_fill():
    # 1 and 2 come from a text class field (ids are only ranks), 3 from an integer one (no name)
    found = [ClassInfo(3, ""), ClassInfo(1, "forest"), ClassInfo(2, "urban")]
    entries = [ClassInfo(3, "", "", "built-up area"), ClassInfo(1, "FOREST", "#123456", "dense forest"),
               ClassInfo(2, "water", "#0000ff", "open water"), ClassInfo(9, "unused", "", "never used")]
    merged = match_prompts(found, entries)
    assert merged == [
        ClassInfo(1, "forest", "#123456", "dense forest"),
        ClassInfo(2, "urban", palette_colour(1), fill_prompt("urban")),  # not water's, though it has id 2
        ClassInfo(3, "class 3", palette_colour(2), "built-up area"),
    ]
    assert match_prompts(found, None) == complete_classes(found)
    assert palette_colour(len(PALETTE)) == palette_colour(0)


# --------------------------------------------------------------------------- normalisation

def test_fit_stats_percentiles_and_apply():
    pixels = np.stack([np.linspace(0, 100, 101), np.linspace(-5, 5, 101), np.full(101, np.nan)])
    pixels[1, ::10] = np.nan                     # NaN values are ignored by the statistics
    st = fit_stats(pixels, [0, 1])
    assert st.bands == [0, 1]
    np.testing.assert_allclose(st.low[0], 2.0, atol=1e-4)
    np.testing.assert_allclose(st.high[0], 98.0, atol=1e-4)
    assert -5 < st.low[1] < -4.5 and 4.5 < st.high[1] < 5
    x = np.array([[50.0, 2.0, 98.0, 1000.0, -1000.0, np.nan],
                  [0.0] * 6,
                  [7.0] * 6], dtype=np.float32)
    y = st.apply(x)
    assert y.shape == (2, 6)                     # only the used bands
    np.testing.assert_allclose(y[0, :5], [0.0, -1.0, 1.0, CLIP, -CLIP], atol=1e-5)
    assert np.isnan(y[0, 5])
    assert y.dtype == np.float32


def test_constant_band_is_finite_and_constant():
    pixels = np.stack([np.full(50, 7.0), np.arange(50.0)])
    st = fit_stats(pixels, [0, 1])
    y = st.apply(np.array([[7.0, 7.0], [0.0, 49.0]], dtype=np.float32))
    assert np.isfinite(y).all()
    assert y[0, 0] == y[0, 1] and abs(y[0, 0]) <= 1.0


def test_usable_bands_and_stats_dict_round_trip():
    has_data = np.isfinite(np.array([[1.0, 2.0], [np.nan, np.nan], [3.0, np.nan], [4.0, 5.0]])).any(axis=1)
    assert usable_bands(has_data) == [0, 2, 3]
    assert usable_bands(has_data, [False, False, False, True]) == [0, 2]
    assert usable_bands(has_data, [True]) == [0, 2, 3]    # a flag list of the wrong length is ignored
    st = BandStats([0, 2], np.array([1.0, 2.0], np.float32), np.array([3.0, 4.0], np.float32))
    back = BandStats.from_dict(json.loads(json.dumps(st.as_dict())))
    assert back.bands == st.bands
    np.testing.assert_array_equal(back.low, st.low)
    np.testing.assert_array_equal(back.high, st.high)


# --------------------------------------------------------------------------- augmentation

def _dihedral_variants(x):
    out = []
    for flip in (False, True):
        y = x.flip(-1) if flip else x
        out += [torch.rot90(y, k, dims=(-2, -1)) for k in range(4)]
    return out


def test_dihedral_same_transform_for_every_modality():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(64, 3, 5, 5, generator=g)
    b = a[:, :1] * 2.0 + 1.0                      # a pixel-wise function of modality a
    a_before, b_before = a.clone(), b.clone()
    out_a, out_b = dihedral([a, b], torch.Generator().manual_seed(1))
    assert torch.equal(a, a_before) and torch.equal(b, b_before)     # inputs untouched
    torch.testing.assert_close(out_b, out_a[:, :1] * 2.0 + 1.0)
    used = set()
    for i in range(64):
        matches = [k for k, v in enumerate(_dihedral_variants(a[i])) if torch.equal(v, out_a[i])]
        assert matches, f"sample {i} is not a flip/rotation of its input"
        used.add(matches[0])
    assert used == set(range(8))                  # all eight transforms occur in 64 draws
    again = dihedral([a, b], torch.Generator().manual_seed(1))
    assert torch.equal(again[0], out_a)           # reproducible with the same generator


# --------------------------------------------------------------------------- device

def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert "CPU" in describe_device(torch.device("cpu"))
    with pytest.raises(ValueError, match="Unknown device 'bogus'"):
        resolve_device("bogus")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "CUDA:1"])
def test_resolve_device_cuda_without_gpu(name):
    with pytest.raises(RuntimeError, match="no CUDA GPU.*'cpu'"):
        resolve_device(name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resolve_device_cuda_with_gpu():
    assert resolve_device("cuda").type == "cuda"
    with pytest.raises(RuntimeError, match="does not exist"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


# --------------------------------------------------------------------------- presets, training helpers, progress

def test_presets_are_fresh_copies_and_configs_forward_compatible():
    p = get_preset("cpu")
    p.model.window = 3
    p.finetune.epochs = 1
    assert PRESETS["cpu"].model.window == 7 and PRESETS["cpu"].finetune.epochs != 1
    assert get_preset("paper").window == 11
    with pytest.raises(ValueError, match="Unknown preset 'gpu'.*cpu"):
        get_preset("gpu")
    d = config_to_dict(ModelConfig(dim=32))
    d["a_future_setting"] = 1
    assert config_from_dict(ModelConfig, d) == ModelConfig(dim=32)


def test_step_cap_shortens_long_epochs_only():
    cfg = FinetuneConfig(epochs=100, max_steps=200)
    assert epoch_count(cfg, 2) == 100      # 8 shots x 12 classes: 2 steps an epoch, within the cap
    assert epoch_count(cfg, 4) == 50       # 20 shots: the cap halves the epochs
    assert epoch_count(cfg, 500) == 1      # never less than one epoch
    assert epoch_count(FinetuneConfig(epochs=100), 4) == 100


def test_cpu_preset_fine_tunes_without_pretraining_unless_asked():
    cpu, paper = get_preset("cpu"), get_preset("paper")
    assert fewshot_pretrain_epochs(cpu) == 0 and cpu.pretrain.epochs > 0, "the pretrain algorithm keeps a schedule"
    assert fewshot_pretrain_epochs(paper) == paper.pretrain.epochs == 400
    set_fewshot_pretrain_epochs(cpu, 7)
    assert fewshot_pretrain_epochs(cpu) == 7
    set_fewshot_pretrain_epochs(paper, 0)
    assert fewshot_pretrain_epochs(paper) == 0


def test_choosing_other_epochs_lifts_the_presets_step_cap():
    preset = get_preset("cpu")
    assert preset.finetune.max_steps
    set_finetune_epochs(preset, preset.finetune.epochs)
    assert preset.finetune.max_steps, "the preset's own epochs keep its cap"
    set_finetune_epochs(preset, 300)
    assert preset.finetune.epochs == 300 and preset.finetune.max_steps is None


def test_batches_cover_an_epoch_and_weighted_draws_balance():
    rng = np.random.default_rng(0)
    seen = np.concatenate(list(batches(10, 4, rng)))
    assert sorted(seen.tolist()) == list(range(10))
    assert [len(b) for b in batches(10, 4, rng)] == [4, 4, 2]
    assert [len(b) for b in batches(9, 4, rng)] == [4, 5]   # never a batch of one (batch norm)
    assert sorted(np.concatenate(list(batches(9, 4, rng))).tolist()) == list(range(9))
    labels = np.array([0] * 90 + [1] * 10)
    weights = 1.0 / np.bincount(labels)[labels]
    drawn = np.concatenate([np.concatenate(list(batches(100, 32, rng, weights))) for _ in range(20)])
    share = np.mean(labels[drawn] == 1)
    assert 0.4 < share < 0.6


def test_optimizer_warmup_then_cosine_to_one_percent():
    p = torch.nn.Parameter(torch.zeros(1))
    opt, sched = make_optimizer([p], lr=1.0, weight_decay=0.0, total_steps=200)
    lrs = []
    for _ in range(200):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1)            # warm-up of 10 steps
    assert max(lrs) == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.01, abs=1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_callback_cancellation_and_messages():
    seen = []
    cb = Callback(progress=lambda *a: seen.append(a), cancelled=lambda: False, log=seen.append)
    cb.progress("phase", 0.5, "half")
    cb.log("hello")
    cb.check()
    assert seen == [("phase", 0.5, "half"), "hello"]
    with pytest.raises(Cancelled):
        Callback(cancelled=lambda: True).check()


# --------------------------------------------------------------------------- windows and tiles

def test_iter_boxes_tile_the_grid_once():
    cover = np.zeros((23, 17), dtype=int)
    for r, c, h, w in iter_boxes(23, 17, 7):
        cover[r:r + h, c:c + w] += 1
    assert (cover == 1).all()


def test_window_offsets_row_major():
    dy, dx = window_offsets(3)
    assert dy.tolist() == [-1, -1, -1, 0, 0, 0, 1, 1, 1]
    assert dx.tolist() == [-1, 0, 1, -1, 0, 1, -1, 0, 1]


def test_extract_windows_edge_padding_and_nodata():
    grid = np.arange(30, dtype=np.float32).reshape(1, 5, 6)
    grid[0, 2, 3] = np.nan
    source = ArraySource([grid])
    st = BandStats([0], np.array([-100.0], np.float32), np.array([100.0], np.float32))   # y = x / 100
    windows, valid = extract_windows(source, [st], np.array([0, 4, 2, 1]), np.array([0, 5, 3, 3]), 3)
    assert valid.tolist() == [True, True, False, True]
    windows = [np.round(w * 100) for w in windows]
    np.testing.assert_array_equal(windows[0][0, 0], [[0, 0, 1], [0, 0, 1], [6, 6, 7]])       # top-left corner
    np.testing.assert_array_equal(windows[0][1, 0], [[22, 23, 23], [28, 29, 29], [28, 29, 29]])  # bottom-right
    np.testing.assert_array_equal(windows[0][3, 0], [[2, 3, 4], [8, 9, 10], [14, 0, 16]])   # NaN neighbour -> 0
    # tiles of any size see the same values
    small, _ = extract_windows(source, [st], np.array([0, 4, 2, 1]), np.array([0, 5, 3, 3]), 3, tile=2)
    np.testing.assert_array_equal(np.round(small[0] * 100), windows[0])
    tile = read_tile(source, [st], 2, 2, 2, 2, pad=1)
    assert tile.arrays[0].shape == (1, 4, 4)
    assert tile.valid.tolist() == [[True, False], [True, True]]


def test_scale_mismatch_flags_other_units_not_another_acquisition():
    from diffclip_qgis.core.normalize import BandStats, scale_mismatch

    trained = BandStats([0, 1, 2], np.array([0.02, 0.05, 0.1], np.float32), np.array([0.3, 0.4, 0.6], np.float32))
    season = BandStats([0, 1, 2], trained.low * 1.3, trained.high * 0.8)
    scaled = BandStats([0, 1, 2], trained.low * 10000, trained.high * 10000)
    assert scale_mismatch(trained, trained) == "" and scale_mismatch(trained, season) == ""
    assert scale_mismatch(trained, scaled).startswith("its values span 1e+04 times the range")
    uniform = BandStats([0, 1, 2], trained.low, trained.low + (trained.high - trained.low) / 20)   # one field
    fraction = BandStats([0, 1, 2], trained.low / 1000, trained.high / 1000)
    assert scale_mismatch(trained, uniform) == "" and "span 0.001 times" in scale_mismatch(trained, fraction)
    offset = BandStats([0, 1], trained.low[:2] + 5, trained.high[:2] + 5)   # e.g. Kelvin for Celsius
    assert "middle lies" in scale_mismatch(trained, offset) and scale_mismatch(trained, BandStats([], [], [])) == ""
