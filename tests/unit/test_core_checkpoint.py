"""Model files: round trip, refusal of foreign or unsafe files, and checks against the inputs."""
import dataclasses
import os
import pickle
import time

import numpy as np
import pytest
import torch

from diffclip_qgis.core import checkpoint
from diffclip_qgis.core.checkpoint import FORMAT, VERSION, ModelFileError, check_inputs, load_model, save_model
from diffclip_qgis.core.classes import ClassInfo
from diffclip_qgis.core.config import ModelConfig
from diffclip_qgis.core.model import DiffCLIP
from diffclip_qgis.core.normalize import BandStats
from diffclip_qgis.core.source import ModalityInfo
from diffclip_qgis.core.trained import ModalityMeta, TrainedModel

from core_fixtures import cached_classifier, single_thread, tiny_config  # noqa: F401

NOT_OURS = "is not a DiffCLIP model file"


def _small_model(head="text", window=3, wavelengths=None):
    torch.manual_seed(0)
    net = DiffCLIP([4, 1], tiny_config(5))
    classes = [ClassInfo(1, "a", "#000000", "prompt a"), ClassInfo(7, "b", "#ffffff", "prompt b")]
    if head == "linear":
        net.set_linear_head(len(classes))
    metas = [ModalityMeta("hyperspectral", 4, BandStats([0, 2, 3], np.array([0.0, 1, 2], np.float32),
                                                         np.array([1.0, 2, 3], np.float32)), wavelengths),
             ModalityMeta("lidar", 1, BandStats([0], np.array([5.0], np.float32), np.array([25.0], np.float32)))]
    return TrainedModel(net.eval(), metas, pretrain_window=5, window=window, classes=classes,
                        report={"finetune_loss": [np.float32(2.0), 1.5], "window_scores": {3: 0.9, 5: np.float64(0.8)},
                                "samples_per_class": {"a": np.int64(3)}})


def _assert_same_network(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_round_trip_of_a_trained_classifier(tmp_path):
    trained = cached_classifier()[0]
    path = tmp_path / "classifier.pt"
    save_model(trained, str(path))
    assert os.listdir(tmp_path) == ["classifier.pt"]          # the temporary file was renamed, none left
    loaded = load_model(str(path))
    assert loaded.is_classifier and not loaded.network.training
    assert loaded.window == trained.window and loaded.pretrain_window == trained.pretrain_window
    assert loaded.classes == trained.classes
    assert loaded.config == trained.config
    assert loaded.network.band_counts == [6, 1] and loaded.network.linear_head is None
    for a, b in zip(loaded.modalities, trained.modalities):
        assert (a.name, a.band_count, a.wavelengths) == (b.name, b.band_count, b.wavelengths)
        assert a.stats.bands == b.stats.bands
        np.testing.assert_array_equal(a.stats.low, b.stats.low)
        np.testing.assert_array_equal(a.stats.high, b.stats.high)
    _assert_same_network(loaded.network, trained.network)
    assert loaded.report["finetune_loss"] == pytest.approx(trained.report["finetune_loss"])


def test_round_trip_of_linear_head_wavelengths_and_report(tmp_path):
    trained = _small_model(head="linear", wavelengths=[450.0, 550.0, 650.0, 750.0])
    path = str(tmp_path / "linear.pt")
    save_model(trained, path)
    loaded = load_model(path)
    assert loaded.network.linear_head is not None
    _assert_same_network(loaded.network, trained.network)
    assert loaded.modalities[0].wavelengths == [450.0, 550.0, 650.0, 750.0]
    assert loaded.modalities[0].stats.bands == [0, 2, 3]
    assert [c.id for c in loaded.classes] == [1, 7]
    # numpy scalars in the report are stored as plain numbers (weights_only loading needs that)
    assert loaded.report["finetune_loss"] == [2.0, 1.5]
    assert loaded.report["samples_per_class"] == {"a": 3}
    assert loaded.report["window_scores"] == {"3": 0.9, "5": pytest.approx(0.8)}


def test_round_trip_of_a_pretrained_encoder(tmp_path):
    trained = _small_model(window=None)
    trained.classes = []
    path = str(tmp_path / "encoder.pt")
    save_model(trained, path)
    loaded = load_model(path)
    assert loaded.window is None and loaded.classes == [] and not loaded.is_classifier
    _assert_same_network(loaded.network, trained.network)


def test_save_overwrites_and_failed_save_leaves_nothing(tmp_path):
    path = str(tmp_path / "m.pt")
    save_model(_small_model(window=3), path)
    save_model(_small_model(window=5), path)
    assert load_model(path).window == 5
    with pytest.raises(OSError):
        save_model(_small_model(), str(tmp_path / "missing folder" / "m.pt"))
    bad = _small_model()
    bad.report["callback"] = lambda: None                     # cannot be pickled
    with pytest.raises(Exception):
        save_model(bad, str(tmp_path / "bad.pt"))
    assert sorted(os.listdir(tmp_path)) == ["m.pt"]


# --------------------------------------------------------------------------- foreign and unsafe files

def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_model(str(tmp_path / "nothing.pt"))


def test_dict_without_our_format_key(tmp_path):
    path = str(tmp_path / "other.pt")
    torch.save({"state_dict": DiffCLIP([2], tiny_config(3)).state_dict(), "epoch": 3}, path)
    with pytest.raises(ModelFileError, match=NOT_OURS + ".*written by DiffCLIP"):
        load_model(path)
    torch.save(torch.zeros(3), path)                          # not even a dict
    with pytest.raises(ModelFileError, match=NOT_OURS):
        load_model(path)


@pytest.mark.parametrize("content", [
    np.random.default_rng(0).bytes(4096), b"", b"PK\x03\x04 truncated zip", b"\x89PNG\r\n\x1a\n0000",
    b'{"classes": []}', b"id,name\n1,forest\n",
], ids=["random", "empty", "zip", "png", "json", "csv"])
def test_files_that_are_no_model(tmp_path, content):
    path = tmp_path / "junk.pt"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=NOT_OURS):
        load_model(str(path))


@pytest.mark.parametrize("content", [b"hello world\n", b"Just a note", b"GIF89a", b"qwerty"],
                         ids=["text-h", "text-J", "gif", "text-q"])
def test_files_that_trip_the_unpickler_are_no_model(tmp_path, content):
    path = tmp_path / "notes.pt"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=NOT_OURS):
        load_model(str(path))


def test_truncated_model_file(tmp_path):
    path = tmp_path / "m.pt"
    save_model(_small_model(), str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=NOT_OURS):
        load_model(str(path))


class _Payload:
    """A pickle that would create a file when unpickled without ``weights_only``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def test_pickle_with_code_is_refused_and_not_run(tmp_path):
    marker = str(tmp_path / "was_executed")
    path = str(tmp_path / "evil.pt")
    torch.save({"format": FORMAT, "version": VERSION, "x": _Payload(marker)}, path)
    with pytest.raises(ModelFileError, match="more than tensors and plain data"):
        load_model(path)
    assert not os.path.exists(marker)
    with open(path + "2", "wb") as f:                         # plain pickle, not torch's zip format
        pickle.dump({"format": FORMAT, "x": _Payload(marker)}, f, protocol=2)
    with pytest.raises(ModelFileError):
        load_model(path + "2")
    assert not os.path.exists(marker)


@pytest.mark.parametrize("version, message", [(VERSION + 1, r"newer DiffCLIP plugin \(format 3.*Update the plugin"),
                                              (VERSION - 1, r"earlier DiffCLIP plugin \(format 1.*Train the model again")])
def test_other_format_versions_are_refused(tmp_path, version, message):
    path = str(tmp_path / "m.pt")
    save_model(_small_model(), path)
    payload = torch.load(path, weights_only=True)
    payload["version"] = version
    torch.save(payload, path)
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


@pytest.mark.parametrize("damage", ["missing_fields", "wrong_weights"])
def test_damaged_model_file_gives_model_file_error(tmp_path, damage):
    path = str(tmp_path / "m.pt")
    save_model(_small_model(), path)
    payload = torch.load(path, weights_only=True)
    if damage == "missing_fields":
        del payload["model_config"], payload["state_dict"]
    else:
        payload["band_counts"] = [9, 1]                       # weights no longer fit the network
    torch.save(payload, path)
    with pytest.raises(ModelFileError):
        load_model(path)


def _edited_model_file(tmp_path, config=None, band_counts=None, tensors=None):
    """A small model's file with some stored settings, band counts or tensors replaced."""
    path = str(tmp_path / "m.pt")
    save_model(_small_model(), path)
    payload = torch.load(path, weights_only=True)
    payload["model_config"].update(config or {})
    payload["band_counts"] = band_counts or payload["band_counts"]
    payload["state_dict"].update(tensors or {})
    torch.save(payload, path)
    return path


def _refused_before_building(monkeypatch, path):
    """The ModelFileError of ``path``; the network is never built (no large allocation)."""
    monkeypatch.setattr(checkpoint, "DiffCLIP", lambda *a, **k: pytest.fail("the network was built"))
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match="damaged or incompatible") as err:
        load_model(path)
    assert time.perf_counter() - start < 2.0
    assert "\n" not in str(err.value)
    return str(err.value)


def test_settings_larger_than_the_weights_are_refused_fast(tmp_path, monkeypatch):
    path = _edited_model_file(tmp_path, {"dim": 2048, "depth": 16})
    assert os.path.getsize(path) < 1_000_000                   # under 1 MB that would build a 2.6 GB network
    assert "tensor encoder.cls_token has shape [1, 1, 16] where the settings need [1, 1, 2048]" in \
        _refused_before_building(monkeypatch, path)


@pytest.mark.parametrize("config, band_counts, reason", [
    ({"dim": 8192}, None, "dim = 8192 is outside 4..4096"),
    ({"depth": 100000}, None, "depth = 100000 is outside 0..64"),
    ({"vocab_size": 10 ** 9}, None, "vocab_size = 1000000000 is outside 4..1000000"),
    ({"context_length": 10 ** 6}, None, "context_length = 1000000 is outside 2..1024"),
    ({"mlp_ratio": "2"}, None, "mlp_ratio = '2' is outside"),
    ({"heads": True}, None, "heads = True is outside"),
    ({"window": 4}, None, "window = 4 is even"),
    ({"heads": 3}, None, "dim = 16 is not divisible by heads = 3"),
    ({"text_heads": 5}, None, "text_width = 16 is not divisible by text_heads = 5"),
    ({}, [4] * 17, "band counts"),
    ({}, [4, 10 ** 6], "band counts"),
    ({}, [9, 1], "tensor decoders.0.expand.weight has shape [4, 16] where the settings need [9, 16]"),
    ({"depth": 2}, None, "tensor encoder.blocks.1.mlp.0.weight is missing"),
    ({"mlp_ratio": 16.0}, None, "tensor encoder.blocks.0.mlp.0.weight has shape [32, 16] where the settings need [256, 16]"),
    ({"reduce_channels": 4096}, None, "tensor stems.0.embed.weight has shape [16, 16, 1, 1]"),
])
def test_implausible_settings_are_refused_before_building(tmp_path, monkeypatch, config, band_counts, reason):
    assert reason in _refused_before_building(monkeypatch, _edited_model_file(tmp_path, config, band_counts))


def test_every_setting_has_bounds():
    assert set(checkpoint.CONFIG_LIMITS) == {f.name for f in dataclasses.fields(ModelConfig)}


def test_a_mismatching_tensor_is_named(tmp_path, monkeypatch):
    path = _edited_model_file(tmp_path, tensors={"text.positional_embedding": torch.zeros(6, 16)})
    assert "tensor text.positional_embedding has shape [6, 16] where the settings need [77, 16]" in \
        _refused_before_building(monkeypatch, path)
    monkeypatch.undo()
    path = _edited_model_file(tmp_path, tensors={"stems.1.reduce.0.weight": torch.zeros(3, 3, 1, 1)})
    with pytest.raises(ModelFileError, match=r"damaged or incompatible.*stems\.1\.reduce\.0\.weight") as err:
        load_model(path)                                      # checked by load_state_dict: one line too
    assert "\n" not in str(err.value)


def test_too_many_weights_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "MAX_PARAMETERS", 1000)
    assert "more than 1000 weights" in _refused_before_building(monkeypatch, _edited_model_file(tmp_path))


# --------------------------------------------------------------------------- inputs against the model

@pytest.mark.parametrize("counts", [[5, 1], [4], [4, 1, 3], [1, 4]])
def test_check_inputs_wrong_band_counts(counts):
    with pytest.raises(ModelFileError) as err:
        check_inputs(_small_model(), counts)
    message = str(err.value)
    assert "[4, 1] bands" in message and "hyperspectral: 4 bands" in message and "lidar: 1 bands" in message
    assert str(counts) in message and "same order" in message


def test_check_inputs_wavelengths():
    trained = _small_model(wavelengths=[450.0, 550.0, 650.0, 750.0])
    warnings = []
    check_inputs(trained, [4, 1], [ModalityInfo("new hsi", [452.0, 548.0, 653.0, 749.0]), ModalityInfo("dsm")],
                 warn=warnings.append)
    assert warnings == []                                     # within 5 nm
    check_inputs(trained, [4, 1], [ModalityInfo("other sensor", [500.0, 600.0, 700.0, 800.0]), ModalityInfo("dsm")],
                 warn=warnings.append)
    assert len(warnings) == 1
    assert "other sensor" in warnings[0] and "wavelengths differ" in warnings[0] and "hyperspectral" in warnings[0]
    check_inputs(trained, [4, 1], [ModalityInfo("unknown"), ModalityInfo("dsm")], warn=warnings.append)
    check_inputs(trained, [4, 1], warn=warnings.append)
    assert len(warnings) == 1                                 # nothing to compare: no warning
