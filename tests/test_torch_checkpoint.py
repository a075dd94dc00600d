"""`kmlc.torch_checkpoint`: both torch.save layouts, read without torch and
without running the pickle."""

import pickle

import numpy as np
import pytest

from kmlc import efficientnet_lite
from kmlc import torch_checkpoint
from tests import torch_files


def _state_dict():
    rng = np.random.default_rng(0)
    return {
        "conv.weight": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
        "bn.running_var": rng.uniform(size=4).astype(np.float32),
        "bn.num_batches_tracked": np.array(7, np.int64),
        "half": rng.normal(size=(2, 5)).astype(np.float16),
        "transposed": np.asfortranarray(rng.normal(size=(3, 2))).astype(np.float64),
    }


@pytest.mark.parametrize("write", [torch_files.write_legacy, torch_files.write_zip])
def test_reads_both_layouts_exactly(tmp_path, write):
    expected = _state_dict()
    path = tmp_path / "weights.pth"
    write(path, expected)
    read = torch_checkpoint.read_state_dict(path)
    assert list(read) == list(expected)
    for name, array in expected.items():
        assert read[name].dtype == array.dtype, name
        np.testing.assert_array_equal(read[name], array)


def test_unwraps_a_state_dict_entry(tmp_path):
    expected = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    path = tmp_path / "wrapped.pth"
    path.write_bytes(
        torch_files.legacy_bytes(
            expected, wrap=lambda tensors: {"state_dict": tensors, "epoch": 3}
        )
    )
    np.testing.assert_array_equal(
        torch_checkpoint.read_state_dict(path)["w"], expected["w"]
    )


@pytest.mark.parametrize(
    "payload",
    [
        torch_files.RunsCommand("touch {marker}"),
        {"weights": torch_files.RunsCommand("touch {marker}")},
    ],
    ids=["top-level", "nested"],
)
def test_a_pickle_that_runs_a_command_is_refused_and_nothing_runs(tmp_path, payload):
    marker = tmp_path / "ran"
    if isinstance(payload, dict):
        payload["weights"].command = payload["weights"].command.format(marker=marker)
    else:
        payload.command = payload.command.format(marker=marker)
    path = tmp_path / "evil.pth"
    path.write_bytes(torch_files.legacy_bytes({}, obj=payload))
    # The file is a working exploit: plain pickle would run the command.
    with pytest.raises(torch_checkpoint.UnsafeCheckpointError, match="system"):
        torch_checkpoint.read_state_dict(path)
    assert not marker.exists()
    with open(path, "rb") as f:
        for _ in range(3):
            pickle.load(f)
        pickle.load(f)
    assert marker.exists()


def test_a_zip_whose_pickle_runs_a_command_is_refused(tmp_path):
    import zipfile

    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "archive/data.pkl", pickle.dumps(torch_files.RunsCommand(f"touch {marker}"))
        )
    with pytest.raises(torch_checkpoint.UnsafeCheckpointError, match="refused"):
        torch_checkpoint.read_state_dict(path)
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    with pytest.raises(torch_checkpoint.CheckpointError, match="notes.pth"):
        torch_checkpoint.read_state_dict(path)


def test_a_pickle_of_something_else(tmp_path):
    path = tmp_path / "numbers.pth"
    path.write_bytes(torch_files.legacy_bytes({}, obj=[1, 2, 3]))
    with pytest.raises(torch_checkpoint.CheckpointError, match="dict of tensors"):
        torch_checkpoint.read_state_dict(path)


@pytest.mark.parametrize("keep", [0.999, 0.5, 0.02])
def test_a_truncated_checkpoint_names_the_file(tmp_path, keep):
    data = torch_files.legacy_bytes(_state_dict())
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(torch_checkpoint.CheckpointError, match="cut.pth"):
        torch_checkpoint.read_state_dict(path)


def test_a_missing_file():
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        torch_checkpoint.read_state_dict("nowhere.pth")


def test_the_installed_lite0_checkpoint():
    """The published file: 296 keys, 4,694,073 values, in lukemelas naming."""
    state = torch_checkpoint.read_state_dict(
        efficientnet_lite.imagenet_checkpoint("efficientnet_lite0")
    )
    assert len(state) == 296
    assert sum(v.size for v in state.values()) == 4_694_073
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert "_blocks.0._expand_conv.weight" not in state
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
