"""`kmlc predict` and `kmlc evaluate` against the model's own outputs."""

import json

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import f1_score

import kmlc
from kmlc import data
from kmlc.cli import main
from kmlc.metrics import sigmoid
from tests import model_fixtures as fx


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    names = [f"tag{i}" for i in range(fx.NUM_LABELS)]
    model = fx.tiny_model("full", label_names=names)
    path = folder / "model.keras"
    model.save(path)
    return path, model


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Six PNGs with a manifest and vocabulary; one text file named .jpg."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    samples = []
    for i in range(6):
        pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
        labels = [f"tag{j}" for j in range(fx.NUM_LABELS) if (i + j) % 3 == 0]
        samples.append({"image_name": f"{i}.png", "image_labels": labels})
    (folder / "bad.jpg").write_text("not an image")
    (folder / "manifest.json").write_text(json.dumps({"samples": samples}))
    names = [f"tag{i}" for i in range(fx.NUM_LABELS)]
    (folder / "vocabulary.txt").write_text("\n".join(names) + "\n")
    return folder


def test_predict_prints_the_models_scores(saved_model, image_folder, capsys):
    path, model = saved_model
    files = [str(image_folder / "0.png"), str(image_folder / "1.png")]
    code = main(["predict", "--model", str(path), *files, "--json", "--threshold", "0"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    image_set = data.read_manifest(
        image_folder / "manifest.json", image_folder, image_folder / "vocabulary.txt"
    )
    images, _ = next(iter(data.make_dataset(image_set.subset([0, 1]), 32, 2)))
    expected = sigmoid(model.predict_on_batch(images))
    for line, row in zip(lines, expected, strict=True):
        got = {item["label"]: item["score"] for item in line["labels"]}
        assert len(got) == fx.NUM_LABELS
        for d, name in enumerate(model.label_names):
            assert got[name] == pytest.approx(row[d], abs=1e-5)
        scores = [item["score"] for item in line["labels"]]
        assert scores == sorted(scores, reverse=True)


def test_predict_top_k_and_threshold(saved_model, image_folder, capsys):
    path, _ = saved_model
    main(
        [
            "predict",
            "--model",
            str(path),
            str(image_folder / "2.png"),
            "--json",
            "--threshold",
            "0",
            "--top-k",
            "2",
        ]
    )
    line = json.loads(capsys.readouterr().out)
    assert len(line["labels"]) == 2
    main(
        [
            "predict",
            "--model",
            str(path),
            str(image_folder / "2.png"),
            "--json",
            "--threshold",
            "1.01",
        ]
    )
    assert json.loads(capsys.readouterr().out)["labels"] == []


def test_predict_reports_an_unreadable_image_and_goes_on(
    saved_model, image_folder, capsys
):
    path, _ = saved_model
    bad, good = str(image_folder / "bad.jpg"), str(image_folder / "3.png")
    code = main(["predict", "--model", str(path), bad, good])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"{bad}: error: not a JPEG, PNG, BMP or GIF image" in err
    assert out.startswith(f"{good}: ")


def test_predict_names_a_missing_or_wrong_model_file(tmp_path, image_folder, capsys):
    assert main(["predict", "--model", str(tmp_path / "no.keras"), "x.png"]) == 2
    assert f"--model: no such file or directory: {tmp_path / 'no.keras'}" in (
        capsys.readouterr().err
    )
    wrong = tmp_path / "graph.npz"
    wrong.write_bytes(b"x")
    assert main(["predict", "--model", str(wrong), "x.png"]) == 2
    assert "Expected a .keras model file" in capsys.readouterr().err


def evaluate(model_path, image_folder, out, spare):
    """`kmlc evaluate` on the folder's manifest, its unreadable image moved
    to `spare` meanwhile (a clean set); returns the exit code."""
    (image_folder / "bad.jpg").rename(spare / "bad.jpg")
    try:
        return main(
            [
                "evaluate",
                "--model",
                str(model_path),
                "--manifest",
                str(image_folder / "manifest.json"),
                "--images",
                str(image_folder),
                "--vocabulary",
                str(image_folder / "vocabulary.txt"),
                "--out",
                str(out),
            ]
        )
    finally:
        (spare / "bad.jpg").rename(image_folder / "bad.jpg")


def test_evaluate_equals_the_metrics_of_the_models_scores(
    saved_model, image_folder, tmp_path, capsys
):
    path, model = saved_model
    assert evaluate(path, image_folder, tmp_path / "eval", tmp_path) == 0
    image_set = data.read_manifest(
        image_folder / "manifest.json", image_folder, image_folder / "vocabulary.txt"
    )
    images, labels = next(iter(data.make_dataset(image_set, 32, 6)))
    scores = sigmoid(model.predict_on_batch(images))
    expected = kmlc.metrics.mean_average_precision(labels.numpy(), scores)
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert written["mAP"] == pytest.approx(expected, abs=1e-6)
    assert written["num_images"] == 6
    assert "model_thresholds" not in written  # the model has none
    assert set(written["per_label"]) == set(model.label_names)
    assert (tmp_path / "eval" / "per_label_ap.png").stat().st_size > 0


def test_evaluate_rejects_another_vocabulary(
    saved_model, image_folder, tmp_path, capsys
):
    path, _ = saved_model
    other = tmp_path / "other.txt"
    other.write_text("\n".join(f"tag{i}" for i in reversed(range(fx.NUM_LABELS))))
    code = main(
        [
            "evaluate",
            "--model",
            str(path),
            "--manifest",
            str(image_folder / "manifest.json"),
            "--images",
            str(image_folder),
            "--vocabulary",
            str(other),
        ]
    )
    assert code == 2
    assert "differ from the model's" in capsys.readouterr().err


# Per-label thresholds.


@pytest.fixture(scope="module")
def thresholded(saved_model, image_folder, tmp_path_factory):
    """The model with per-label thresholds: the median of each label's
    scores on the six images, so that about half of them pass each."""
    _, model = saved_model
    image_set = data.read_manifest(
        image_folder / "manifest.json", image_folder, image_folder / "vocabulary.txt"
    )
    images, labels = next(iter(data.make_dataset(image_set, 32, 6)))
    scores = sigmoid(model.predict_on_batch(images))
    copy = kmlc.MultiLabelClassifier.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    copy.set_thresholds(np.median(scores, axis=0))
    path = tmp_path_factory.mktemp("thresholded") / "model.keras"
    copy.save(path)
    return path, copy, scores, labels.numpy()


def test_predict_uses_the_models_thresholds(thresholded, image_folder, capsys):
    path, model, scores, _ = thresholded
    files = [str(image_folder / f"{i}.png") for i in range(6)]
    assert main(["predict", "--model", str(path), *files, "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for line, row in zip(lines, scores, strict=True):
        got = {item["label"] for item in line["labels"]}
        expected = {
            name
            for name, score, cut in zip(
                model.label_names, row, model.thresholds, strict=True
            )
            if score >= cut
        }
        assert got == expected
    assert 0 < sum(len(line["labels"]) for line in lines) < 6 * fx.NUM_LABELS
    # --threshold overrides them with one value.
    main(["predict", "--model", str(path), *files[:1], "--json", "--threshold", "0"])
    assert len(json.loads(capsys.readouterr().out)["labels"]) == fx.NUM_LABELS


def test_evaluate_reports_fixed_and_model_thresholds(
    thresholded, image_folder, tmp_path, capsys
):
    path, model, scores, labels = thresholded
    assert evaluate(path, image_folder, tmp_path / "eval", tmp_path) == 0
    printed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    # Pooled F1 by scikit-learn, at 0.5 and at the model's thresholds.
    fixed = f1_score(labels.ravel(), (scores >= 0.5).ravel())
    tuned = f1_score(labels.ravel(), (scores >= model.thresholds).ravel())
    for report in (printed, written):
        assert report["threshold"] == 0.5
        assert report["OF1"] == pytest.approx(fixed, abs=1e-6)
        assert report["model_thresholds"]["OF1"] == pytest.approx(tuned, abs=1e-6)
    for d, name in enumerate(model.label_names):
        assert written["per_label"][name]["threshold"] == pytest.approx(
            float(model.thresholds[d])
        )
        assert written["per_label"][name]["F1_at_threshold"] == pytest.approx(
            f1_score(labels[:, d], scores[:, d] >= model.thresholds[d]), abs=1e-6
        )
