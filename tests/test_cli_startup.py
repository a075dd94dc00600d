"""The command line answers --help, --version and argument errors without
importing TensorFlow or Keras (each costs 5-30 s on a small machine)."""

import json
import subprocess
import sys
import textwrap

import pytest

from kmlc.cli import COMMANDS

PROBE = textwrap.dedent(
    """
    import json, sys
    from kmlc.cli import main
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit:
        code = exit.code
    heavy = sorted({"tensorflow", "keras", "jax"} & set(sys.modules))
    print(json.dumps({"code": code, "heavy": heavy}))
    """
)


def _run(*argv):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(result.stdout.strip().splitlines()[-1]), result


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        *[[command, "--help"] for command in COMMANDS],
        ["export"],  # --model missing: an argument error
        ["evaluate", "--model", "/no/such/model.keras", "--manifest", "m.json"],
        ["train", "--config", "/no/such/config.yaml"],
        ["train", "--strategy", "nonsense"],
        ["no-such-command"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_no_tensorflow_before_the_work_starts(argv):
    answer, result = _run(*argv)
    assert answer["heavy"] == [], result.stderr
    expected = 0 if argv[-1] in ("--help", "--version") else 2
    assert answer["code"] == expected, result.stderr


def test_version_names_the_package_version():
    from kmlc.version import __version__

    _, result = _run("--version")
    assert result.stdout.startswith(f"kmlc {__version__}")


def test_import_kmlc_is_lazy_and_names_still_resolve():
    code = textwrap.dedent(
        """
        import sys
        import kmlc
        assert "tensorflow" not in sys.modules and "keras" not in sys.modules
        assert "build_model" in dir(kmlc) and kmlc.__version__
        from kmlc import LabelGraph  # numpy/scipy only
        assert "tensorflow" not in sys.modules
        assert callable(kmlc.build_model)
        try:
            kmlc.no_such_name
        except AttributeError as error:
            assert "no_such_name" in str(error)
        else:
            raise AssertionError("expected AttributeError")
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.stdout.strip().endswith("ok"), result.stderr


def test_a_missing_input_is_named_at_once():
    answer, result = _run("evaluate", "--model", "/no/such.keras", "--tfrecords", ".")
    assert answer["code"] == 2 and answer["heavy"] == []
    assert "--model: no such file or directory: /no/such.keras" in result.stderr


def test_a_missing_optional_package_is_an_error_line_not_a_traceback(
    monkeypatch, capsys
):
    from kmlc import cli
    from kmlc.data import tfds_reader

    def missing(*args, **kwargs):
        raise ModuleNotFoundError(
            'TFDS needs the tensorflow-datasets package: pip install "kmlc[datasets]"'
        )

    monkeypatch.setattr(tfds_reader, "read_tfds", missing)
    monkeypatch.setattr("kmlc.data.sources.read_tfds", missing)
    assert cli.main(["data", "check", "--tfds", "voc/2007"]) == 2
    err = capsys.readouterr().err
    assert "kmlc data: error: TFDS needs" in err and "Traceback" not in err
