"""`kmlc demo` on a tiny setting: the files others rely on, and the table."""

import json

import keras

from kmlc.cli import main
from kmlc.commands.demo import format_table


def test_demo_writes_models_metrics_and_plots(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--out",
            str(out),
            "--images",
            "120",
            "--epochs",
            "1",
            "--image-size",
            "32",
        ]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"baseline", "full"}
    for preset in ("baseline", "full"):
        assert 0.0 <= metrics[preset]["mAP"] <= 1.0
        run = json.loads((out / "runs" / preset / "metrics.json").read_text())
        assert run["mAP"] == metrics[preset]["mAP"]
    model = keras.saving.load_model(out / "model.keras")
    assert model.heads == ("cls", "gcn", "fusion", "attention")
    for plot in ("ap_comparison.png", "attention_maps.png", "label_graph.png"):
        assert (out / plot).stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "baseline" in printed and "full" in printed
    assert str(out / "model.keras") in printed


def test_table_shows_each_preset_side_by_side():
    table = format_table(
        {
            "baseline": {
                "mAP": 0.5,
                "CP": 0.1,
                "CR": 0.2,
                "CF1": 0.3,
                "OP": 0.4,
                "OR": 0.5,
                "OF1": 0.6,
                "N+": 7,
            },
            "full": {
                "mAP": 0.75,
                "CP": 0.1,
                "CR": 0.2,
                "CF1": 0.3,
                "OP": 0.4,
                "OR": 0.5,
                "OF1": 0.6,
                "N+": 9,
            },
        }
    )
    lines = table.splitlines()
    assert lines[0].split() == ["baseline", "full"]
    assert lines[1].split() == ["mAP", "0.500", "0.750"]
    assert lines[-1].split()[-2:] == ["7", "9"]
