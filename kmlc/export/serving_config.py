"""TF Serving's model config file (`models.config`) for an exported model.

`tensorflow_model_server --model_config_file=models.config` serves the
models a `ModelServerConfig` text proto lists, each with its name, base
path (the directory holding the numbered versions that
`kmlc.export.export_saved_model` writes), platform and version policy:

    model_config_list {
      config {
        name: "corel5k"
        base_path: "/models/corel5k"
        model_platform: "tensorflow"
        model_version_policy {
          latest {
            num_versions: 1
          }
        }
      }
    }

`write_models_config` puts one beside a model's versions. The repository's
`export/serving/` holds the other files a deployment needs.
"""

import os
import posixpath

from kmlc import io as kmlc_io

MODELS_CONFIG_FILE = "models.config"
PLATFORM = "tensorflow"


def models_config(name, base_path, num_versions=1, versions=None):
    """A `ModelServerConfig` text proto serving one model.

    Args:
        name: str. The model name clients ask for.
        base_path: str. The model's base path as the server sees it: the
            directory of its numbered versions (`<export base>/<name>`).
        num_versions: int. Serve the latest this many versions. Defaults
            to 1.
        versions: sequence of int or None. Serve exactly these versions
            instead (the `specific` policy).

    Returns:
        str. The text proto.
    """
    if not isinstance(name, str) or not name or '"' in name or "\\" in name:
        raise ValueError(
            "The model name must be a non-empty string without quotes or "
            f"backslashes. Received: name={name!r}"
        )
    base_path = os.fspath(base_path)
    if not base_path or '"' in base_path or "\\" in base_path:
        raise ValueError(
            "The base path must be a non-empty path without quotes or "
            f"backslashes. Received: base_path={base_path!r}"
        )
    if versions is not None:
        versions = [int(version) for version in versions]
        if not versions or min(versions) < 0:
            raise ValueError(
                "versions must list at least one non-negative version. "
                f"Received: versions={versions}"
            )
        policy = ["specific {"] + [f"  versions: {version}" for version in versions]
    else:
        if isinstance(num_versions, bool) or int(num_versions) < 1:
            raise ValueError(
                f"num_versions must be at least 1. Received: {num_versions!r}"
            )
        policy = ["latest {", f"  num_versions: {int(num_versions)}"]
    lines = [
        "model_config_list {",
        "  config {",
        f'    name: "{name}"',
        f'    base_path: "{base_path}"',
        f'    model_platform: "{PLATFORM}"',
        "    model_version_policy {",
        *(f"      {line}" for line in policy),
        "      }",
        "    }",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def write_models_config(base_path, name, server_base_path=None, **kwargs):
    """Writes `<base_path>/<name>/models.config`, serving that model's versions.

    The arguments mirror `export_saved_model(model, base_path, name)`. TF
    Serving only looks at the numbered directories of a model's base path,
    so the file can live beside the versions.

    Args:
        base_path: str. The export base directory (one folder per model).
        name: str. The model name.
        server_base_path: str or None. `base_path` as the server sees it
            (e.g. `/models`, where a container mounts it). Defaults to the
            absolute path of `base_path`.
        **kwargs: `num_versions` or `versions`, as in `models_config`.

    Returns:
        str. The file written.
    """
    base_path = os.fspath(base_path)
    if server_base_path is None:
        model_path = os.path.join(os.path.abspath(base_path), name)
    else:
        # The server's file system may not be this one: a POSIX path.
        model_path = posixpath.join(os.fspath(server_base_path), name)
    text = models_config(name, model_path, **kwargs)
    return kmlc_io.write_text(os.path.join(base_path, name, MODELS_CONFIG_FILE), text)
