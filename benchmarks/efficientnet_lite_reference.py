"""kmlc's EfficientNet-Lite against the PyTorch reference; prints JSON.

    pip install torch==2.13.0 efficientnet-lite-pytorch
    python benchmarks/efficientnet_lite_reference.py --variants efficientnet_lite0

Builds each variant in Keras with its ImageNet weights (read by
`kmlc.torch_checkpoint`, no torch) and the same checkpoint in the
`efficientnet_lite_pytorch` reference model under torch, feeds both the
same Corel-5k photos (`KMLC_COREL5K`) preprocessed as `(x - 127) / 128`, and
reports the largest difference of the ImageNet logits and how often the
two top-1 classes agree. torch is needed here only, never by kmlc.
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COREL5K = os.environ.get(
    "KMLC_COREL5K", os.path.join(REPO_ROOT, "..", "shared", "data", "corel5k")
)


def photos(count, size):
    names = sorted(os.listdir(os.path.join(COREL5K, "images")))[:count]
    return np.stack(
        [
            np.asarray(
                Image.open(os.path.join(COREL5K, "images", name))
                .convert("RGB")
                .resize((size, size), Image.BILINEAR),
                np.float32,
            )
            for name in names
        ]
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="efficientnet_lite0")
    parser.add_argument("--images", type=int, default=16)
    args = parser.parse_args()

    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from kmlc import efficientnet_lite as el

    for variant in args.variants.split(","):
        spec = el.VARIANTS[variant]
        x = (photos(args.images, spec.resolution) - 127.0) / 128.0
        keras_model = el.efficientnet_lite(variant, include_top=True)
        path = el.load_weights(keras_model, variant, "imagenet")
        keras_logits = np.asarray(keras_model(x, training=False))

        reference = EfficientNet.from_name(variant.replace("_", "-"))
        reference.load_state_dict(torch.load(path, map_location="cpu"))
        reference.eval()
        with torch.no_grad():
            torch_logits = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
        print(
            json.dumps(
                {
                    "name": "efficientnet_lite_reference",
                    "variant": variant,
                    "images": args.images,
                    "max_abs_logit_difference": float(
                        np.abs(keras_logits - torch_logits).max()
                    ),
                    "logit_scale": float(np.abs(torch_logits).max()),
                    "top1_agreement": float(
                        np.mean(keras_logits.argmax(-1) == torch_logits.argmax(-1))
                    ),
                }
            )
        )


if __name__ == "__main__":
    main()
