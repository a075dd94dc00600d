"""`kmlc.serving.Client` against the dev server: the model's own scores."""

import numpy as np
import pytest
import tensorflow as tf

from kmlc.serving import Client
from kmlc.serving import RestClient
from kmlc.serving import ServingError
from kmlc.serving import rank_labels
from tests.serving.conftest import IMAGE_SIZE
from tests.serving.conftest import LABELS
from tests.serving.conftest import MODEL_NAME
from tests.serving.conftest import encode
from tests.serving.conftest import expected_scores
from tests.serving.conftest import random_pixels


@pytest.fixture(scope="module")
def client(server):
    with Client(server.grpc_target, MODEL_NAME, timeout=10) as grpc_client:
        yield grpc_client


def test_predict_raw_gives_the_models_sigmoid_scores(
    client, models, pixels, png_images
):
    outputs = client.predict_raw(png_images)
    want = expected_scores(models[0], pixels)
    np.testing.assert_allclose(outputs["scores"], want, atol=1e-5)
    logits = models[0].predict(pixels.astype(np.float32), verbose=0)
    np.testing.assert_allclose(outputs["logits"], logits, atol=1e-5)
    assert outputs["label_names"].shape == (3, len(LABELS))
    assert all(list(row) == LABELS for row in outputs["label_names"])


def test_serving_images_signature_takes_float_arrays(server, models, pixels):
    with Client(server.grpc_target, MODEL_NAME, signature="serving_images") as client:
        outputs = client.predict_raw(pixels.astype(np.float32))
    np.testing.assert_allclose(
        outputs["scores"], expected_scores(models[0], pixels), atol=1e-5
    )


def test_images_of_another_size_are_resized_by_the_signature(client, models):
    pixels = random_pixels(1, seed=5, size=48)[:, :40]  # 40x48, not square
    want_input = tf.image.resize(pixels.astype(np.float32), (IMAGE_SIZE, IMAGE_SIZE))
    want = expected_scores(models[0], want_input.numpy())
    got = client.predict_raw([encode(pixels[0])])["scores"]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_predict_ranks_labels_by_score(client, models, pixels, png_images):
    want = expected_scores(models[0], pixels)
    ranked = client.predict(png_images, top_k=2)
    for row, pairs in zip(want, ranked, strict=True):
        best = np.argsort(-row)[:2]
        assert [label for label, _ in pairs] == [LABELS[i] for i in best]
        np.testing.assert_allclose([s for _, s in pairs], row[best], atol=1e-5)
    everything = client.predict(png_images)
    assert [len(pairs) for pairs in everything] == [len(LABELS)] * 3
    assert all(
        [s for _, s in pairs] == sorted((s for _, s in pairs), reverse=True)
        for pairs in everything
    )


def test_threshold_keeps_labels_at_or_above_it(client, models, pixels, png_images):
    want = expected_scores(models[0], pixels)
    threshold = float(np.median(want))
    ranked = client.predict(png_images, threshold=threshold)
    for row, pairs in zip(want, ranked, strict=True):
        assert {label for label, _ in pairs} == {
            LABELS[i] for i in np.flatnonzero(row >= threshold)
        }


def test_file_paths_give_the_same_answer_as_bytes(client, png_images, tmp_path):
    paths = []
    for index, data in enumerate(png_images):
        path = tmp_path / f"image_{index}.png"
        path.write_bytes(data)
        paths.append(str(path))
    np.testing.assert_array_equal(
        client.predict_raw(paths)["scores"], client.predict_raw(png_images)["scores"]
    )
    assert client.predict(paths[0]) == client.predict([png_images[0]])


def test_metadata_lists_both_signatures(client):
    metadata = client.metadata()
    assert metadata["name"] == MODEL_NAME
    assert metadata["version"] == 1
    default = metadata["signatures"]["serving_default"]
    assert default["inputs"] == {"images": {"dtype": "DT_STRING", "shape": [-1]}}
    assert default["outputs"] == {
        "decisions": {"dtype": "DT_BOOL", "shape": [-1, len(LABELS)]},
        "label_names": {"dtype": "DT_STRING", "shape": [-1, len(LABELS)]},
        "logits": {"dtype": "DT_FLOAT", "shape": [-1, len(LABELS)]},
        "scores": {"dtype": "DT_FLOAT", "shape": [-1, len(LABELS)]},
    }
    images = metadata["signatures"]["serving_images"]["inputs"]["images"]
    assert images == {"dtype": "DT_FLOAT", "shape": [-1, IMAGE_SIZE, IMAGE_SIZE, 3]}
    assert sorted(metadata["signatures"]) == ["serving_default", "serving_images"]


def test_status_reports_the_served_version(client):
    assert client.status() == [
        {"version": 1, "state": "AVAILABLE", "error_code": "OK", "error_message": ""}
    ]


def test_asking_for_the_served_version_works_and_another_is_not_found(server):
    with Client(server.grpc_target, MODEL_NAME, version=1) as client:
        assert client.status()[0]["version"] == 1
        assert client.metadata()["version"] == 1
    with Client(server.grpc_target, MODEL_NAME, version=7) as client:
        with pytest.raises(ServingError, match=r"Specific\(tiny, 7\)") as info:
            client.predict_raw([b"x"])
    assert info.value.code == "NOT_FOUND"


def test_server_errors_name_code_model_and_target(client, server):
    with pytest.raises(ServingError) as info:
        client.predict([b"not an image"])
    error = info.value
    assert error.code == "INVALID_ARGUMENT"
    assert error.model_name == MODEL_NAME and error.target == server.grpc_target
    assert "Instance 0" in error.details
    message = str(error)
    assert "INVALID_ARGUMENT" in message and server.grpc_target in message
    assert "'tiny'" in message


@pytest.mark.parametrize(
    "images, error, match",
    [
        ([], ValueError, "empty list"),
        ([123], TypeError, "Image 0 must be encoded bytes or a file path"),
        (["/no/such/image.png"], FileNotFoundError, "Image 0: no such file"),
        (np.zeros((2, 32, 32), np.float32), ValueError, r"\[B, H, W, 3\]"),
    ],
)
def test_bad_images_are_refused_before_sending(client, images, error, match):
    with pytest.raises(error, match=match):
        client.predict(images)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"top_k": 0}, "top_k must be at least 1"),
        ({"top_k": 1.5}, "top_k must be an int"),
        ({"threshold": 1.5}, r"threshold must be a score in \[0, 1\]"),
    ],
)
def test_bad_ranking_arguments_are_refused(client, png_images, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        client.predict(png_images, **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"timeout": 0}, "timeout must be positive"),
        ({"retries": -1}, "retries must be >= 0"),
        ({"backoff": -1}, "backoff must be >= 0"),
    ],
)
def test_bad_client_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Client("127.0.0.1:1", MODEL_NAME, **kwargs)
    with pytest.raises(ValueError, match=match):  # the REST client alike
        RestClient("http://127.0.0.1:1", MODEL_NAME, **kwargs)


def test_rank_labels_sorts_filters_and_keeps_ties_in_label_order():
    names = ["a", "b", "c", "d"]
    scores = np.array([0.2, 0.9, 0.2, 0.6])
    assert rank_labels(scores, names) == [
        ("b", 0.9),
        ("d", 0.6),
        ("a", 0.2),
        ("c", 0.2),
    ]
    assert rank_labels(scores, names, top_k=3, threshold=0.5) == [
        ("b", 0.9),
        ("d", 0.6),
    ]
    with pytest.raises(ValueError, match="Got 4 scores but 3 label names"):
        rank_labels(scores, names[:3])
