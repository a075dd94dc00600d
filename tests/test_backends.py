"""The same weights give the same logits under TensorFlow and JAX.

Proof that kmlc's layers are written with keras.ops only: models saved under
TensorFlow are loaded in one subprocess with KERAS_BACKEND=jax, which
predicts on the same images and also runs a training step there (the
auxiliary-loss path of `compute_loss`).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests import model_fixtures as fx

PRESETS = ("baseline", "gcn", "full")

JAX_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import keras
    import numpy as np
    import kmlc

    assert keras.backend.backend() == "jax"
    folder, presets = sys.argv[1], sys.argv[2].split(",")
    data = np.load(f"{folder}/data.npz")
    losses = {}
    for preset in presets:
        model = kmlc.load_model(f"{folder}/{preset}.keras")
        np.save(f"{folder}/{preset}_jax.npy", model.predict(data["x"], verbose=0))
        model.compile(optimizer="sgd")
        losses[preset] = float(np.ravel(model.train_on_batch(data["x"], data["y"]))[0])
    print(json.dumps(losses))
    """
)


def test_tensorflow_and_jax_give_the_same_logits(tmp_path):
    pytest.importorskip("jax", reason="needs the dev extra (jax)")
    x, y = fx.images(3, seed=1), fx.label_matrix(3)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    expected = {}
    for preset in PRESETS:
        model = fx.tiny_model(preset)
        expected[preset] = model.predict(x, verbose=0)
        model.save(tmp_path / f"{preset}.keras")
    (tmp_path / "run_jax.py").write_text(JAX_SCRIPT)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [
            sys.executable,
            str(tmp_path / "run_jax.py"),
            str(tmp_path),
            ",".join(PRESETS),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    losses = json.loads(result.stdout.strip().splitlines()[-1])
    for preset in PRESETS:
        got = np.load(tmp_path / f"{preset}_jax.npy")
        np.testing.assert_allclose(got, expected[preset], rtol=1e-4, atol=1e-4)
        assert np.isfinite(losses[preset]) and losses[preset] > 0
