"""`kmlc.export.serving_config` and the TF Serving files in `export/serving/`.

Each file is parsed with TF Serving's own messages (`serving_protos`), so a
misspelt field or a wrong type fails here rather than in the server.
"""

import os
import re

import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from kmlc.export import serving_config
from tests.conftest import REPO_ROOT
from tests.export import serving_protos

SERVING_DIR = REPO_ROOT / "export" / "serving"


def parse_models_config(text):
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def only_model(config):
    (entry,) = config.model_config_list.config
    return entry


# === models.config from the library ===


def test_models_config_serves_the_latest_version():
    entry = only_model(
        parse_models_config(serving_config.models_config("corel5k", "/m/corel5k"))
    )
    assert entry.name == "corel5k"
    assert entry.base_path == "/m/corel5k"
    assert entry.model_platform == "tensorflow"
    policy = entry.model_version_policy
    assert policy.WhichOneof("policy_choice") == "latest"
    assert policy.latest.num_versions == 1
    latest_3 = serving_config.models_config("m", "/m", num_versions=3)
    assert only_model(parse_models_config(latest_3)).model_version_policy == (
        text_format.Parse(
            "latest { num_versions: 3 }", type(entry.model_version_policy)()
        )
    )


def test_models_config_specific_versions():
    text = serving_config.models_config("m", "/models/m", versions=[4, 7])
    policy = only_model(parse_models_config(text)).model_version_policy
    assert policy.WhichOneof("policy_choice") == "specific"
    assert list(policy.specific.versions) == [4, 7]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": 'a"b'}, r"model name .*Received: name='a\"b'"),
        ({"name": ""}, r"model name .*Received: name=''"),
        ({"base_path": ""}, r"base path .*Received: base_path=''"),
        ({"base_path": "C:\\models"}, r"base path .*Received: base_path="),
        ({"num_versions": 0}, r"num_versions must be at least 1. Received: 0"),
        ({"versions": []}, r"at least one .*Received: versions=\[\]"),
        ({"versions": [-1]}, r"non-negative .*Received: versions=\[-1\]"),
    ],
)
def test_models_config_errors(kwargs, message):
    arguments = {"name": "m", "base_path": "/models/m", **kwargs}
    with pytest.raises(ValueError, match=message):
        serving_config.models_config(**arguments)


def test_write_models_config_beside_the_versions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = serving_config.write_models_config("models", "corel5k")
    assert path == os.path.join("models", "corel5k", "models.config")
    entry = only_model(parse_models_config((tmp_path / path).read_text()))
    assert entry.base_path == str(tmp_path / "models" / "corel5k")
    serving_config.write_models_config(
        "models", "corel5k", server_base_path="/models", num_versions=2
    )
    entry = only_model(parse_models_config((tmp_path / path).read_text()))
    assert entry.base_path == "/models/corel5k"
    assert entry.model_version_policy.latest.num_versions == 2
    assert sorted(os.listdir(tmp_path / "models" / "corel5k")) == ["models.config"]


# === export/serving/ ===


def test_the_shipped_models_config_is_the_library_s():
    text = (SERVING_DIR / "models.config").read_text(encoding="utf-8")
    shipped = parse_models_config(text)
    entry = only_model(shipped)
    assert (entry.name, entry.base_path) == ("corel5k", "/models/corel5k")
    assert entry.model_platform == "tensorflow"
    assert entry.model_version_policy.latest.num_versions == 1
    assert shipped == parse_models_config(
        serving_config.models_config("corel5k", "/models/corel5k")
    )


def test_batching_parameters():
    text = (SERVING_DIR / "batching_parameters.txt").read_text(encoding="utf-8")
    parameters = text_format.Parse(text, serving_protos.batching_parameters()())
    for field in (
        "max_batch_size",
        "batch_timeout_micros",
        "max_enqueued_batches",
        "num_batch_threads",
    ):
        assert parameters.HasField(field), field
    assert parameters.max_batch_size.value == 32
    assert 0 < parameters.batch_timeout_micros.value <= 10_000  # at most 10 ms
    assert parameters.num_batch_threads.value >= 1
    assert parameters.max_enqueued_batches.value >= 1
    # TF Serving's rule for allowed sizes: increasing, the last the maximum.
    sizes = list(parameters.allowed_batch_sizes)
    if sizes:
        assert sizes == sorted(set(sizes))
        assert sizes[-1] == parameters.max_batch_size.value


def test_monitoring_config():
    text = (SERVING_DIR / "monitoring.config").read_text(encoding="utf-8")
    config = text_format.Parse(text, serving_protos.monitoring_config()())
    assert config.prometheus_config.enable is True
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_a_misspelt_field_does_not_parse():
    # The messages are strict: what the tests above accept, the server does.
    with pytest.raises(text_format.ParseError, match="max_batch_sise"):
        text_format.Parse(
            "max_batch_sise { value: 32 }", serving_protos.batching_parameters()()
        )


def compose_flags():
    compose = yaml.safe_load(
        (SERVING_DIR / "docker-compose.yml").read_text(encoding="utf-8")
    )
    service = compose["services"]["serving"]
    flags = dict(flag.lstrip("-").split("=", 1) for flag in service["command"])
    return service, flags


def test_docker_compose_mounts_the_files_it_names():
    service, flags = compose_flags()
    assert "tensorflow/serving" in service["image"]
    assert {"8500:8500", "8501:8501"} <= set(service["ports"])
    mounts = dict(volume.rsplit(":", 2)[:2][::-1] for volume in service["volumes"])
    assert mounts["/config"] == "./"
    assert "/models" in mounts
    for flag in (
        "model_config_file",
        "batching_parameters_file",
        "monitoring_config_file",
    ):
        directory, name = os.path.split(flags[flag])
        assert directory == "/config", flag
        assert (SERVING_DIR / name).is_file(), name
    assert flags["enable_batching"] == "true"
    # The served model lies under the /models mount.
    text = (SERVING_DIR / "models.config").read_text(encoding="utf-8")
    assert only_model(parse_models_config(text)).base_path.startswith("/models/")


def test_the_readme_docker_command_passes_the_compose_flags():
    readme = (REPO_ROOT / "export" / "README.md").read_text(encoding="utf-8")
    (command,) = re.findall(r"docker run .*?(?:\n\n|```)", readme, re.S)
    _, flags = compose_flags()
    for flag, value in flags.items():
        assert f"--{flag}={value}" in command, flag
    assert "target=/config" in command and "target=/models" in command
