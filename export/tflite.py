"""A trained model as LiteRT (`.tflite`) files, one for each quantize mode.

Public kmlc API only: load the model, read calibration images for int8,
convert once a mode. (`kmlc export --format tflite --quantize MODE` writes
one of them from the command line.)

    python export/tflite.py --model runs/corel5k/best.keras --out tflite \\
        --manifest train.json --images images/ --vocabulary vocabulary.txt

writes `tflite/best_float32.tflite`, `_float16`, `_dynamic` and `_int8`
(each with its `.labels.txt`). int8 calibrates on the manifest's images;
`--quantize float32 float16 dynamic` needs none.
"""

import argparse
import os

import kmlc
from kmlc import data
from kmlc.export import lite
from kmlc.export import model_image_size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the .keras model file")
    parser.add_argument("--out", required=True, help="the directory to write")
    parser.add_argument(
        "--quantize",
        nargs="+",
        choices=tuple(lite.QUANTIZE_MODES),
        default=list(lite.QUANTIZE_MODES),
        help="the modes to write (default: all)",
    )
    parser.add_argument("--manifest", help="int8 calibration images: a manifest")
    parser.add_argument("--images", help="its images directory")
    parser.add_argument("--vocabulary", help="its vocabulary file")
    parser.add_argument("--num-calibration-samples", type=int, default=200)
    args = parser.parse_args(argv)

    model = kmlc.load_model(args.model, compile=False)
    stem = os.path.splitext(os.path.basename(args.model))[0]
    calibration = None
    if args.manifest:
        image_set = data.read_manifest(args.manifest, args.images, args.vocabulary)
        calibration = lite.calibration_dataset(image_set, model_image_size(model))
    for mode in args.quantize:
        path = lite.convert(
            model,
            os.path.join(args.out, f"{stem}_{mode}.tflite"),
            quantize=mode,
            representative_data=calibration,
            num_calibration_samples=args.num_calibration_samples,
        )
        print(f"{path}\t{mode}\t{os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
