"""A trained model as an ONNX file.

Public kmlc API only. (Not `onnx.py`: a script's own folder comes first on
Python's path, and that name would hide the `onnx` package.)

    python export/onnx_model.py --model runs/corel5k/best.keras --out model.onnx

writes `model.onnx` (inputs `images` float32 [B, H, W, 3], RGB 0-255;
outputs `logits` and `scores`) and `model.onnx.labels.txt`.
"""

import argparse

import kmlc
from kmlc.export import onnx as kmlc_onnx


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the .keras model file")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=kmlc_onnx.DEFAULT_OPSET)
    args = parser.parse_args(argv)

    model = kmlc.load_model(args.model, compile=False)
    print(kmlc_onnx.export_onnx(model, args.out, opset=args.opset))


if __name__ == "__main__":
    main()
