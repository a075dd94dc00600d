"""Training with `model.fit` in a plain script, the way users write theirs.

Everything here is public kmlc API: read the data, split it, count the label
graph on the training split, build the model, compile, fit. (`kmlc train
--config ...` does the same with configs, resumable backups and more
callbacks; see kmlc/training/.)

    python training/train.py --manifest train.json --images images/ \\
        --vocabulary vocabulary.txt --backbone resnet101 --image-size 448 \\
        --weights imagenet --epochs 20 --out runs/script
"""

import argparse
import os

import keras

import kmlc
from kmlc import data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--vocabulary", required=True)
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--image-size", type=int, default=448)
    parser.add_argument("--weights", default=None, help="None, imagenet or a file")
    parser.add_argument("--preset", default="full", choices=sorted(kmlc.PRESETS))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--max-images", type=int, help="use only the first N images")
    parser.add_argument("--out", default="runs/script")
    args = parser.parse_args()

    images = data.read_manifest(args.manifest, args.images, args.vocabulary)
    if args.max_images:
        images = images.subset(range(min(args.max_images, len(images))))
    train_set, validation_set = data.split(images, validation_fraction=0.1, seed=0)
    graph = kmlc.LabelGraph.from_labels(
        train_set.labels,
        strategy="threshold",
        tau=0.4,
        label_names=list(images.vocabulary),
    )
    train_ds = data.make_dataset(
        train_set, args.image_size, args.batch_size, training=True, seed=0
    )
    validation_ds = data.make_dataset(validation_set, args.image_size, args.batch_size)

    model = kmlc.build_model(
        graph.num_labels,
        graph,
        backbone=args.backbone,
        image_size=args.image_size,
        weights=args.weights,
        heads=args.preset,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(args.learning_rate, weight_decay=1e-4),
        loss=kmlc.losses.AsymmetricLoss(),
        metrics=[kmlc.metrics.MeanAveragePrecision(graph.num_labels, name="mAP")],
        aux_loss_weight=1.0,
    )
    os.makedirs(args.out, exist_ok=True)
    model.fit(
        train_ds,
        validation_data=validation_ds,
        epochs=args.epochs,
        callbacks=[
            keras.callbacks.ModelCheckpoint(
                os.path.join(args.out, "best.keras"),
                monitor="val_mAP",
                mode="max",
                save_best_only=True,
            ),
            keras.callbacks.BackupAndRestore(os.path.join(args.out, "backup")),
            keras.callbacks.CSVLogger(os.path.join(args.out, "history.csv")),
        ],
    )
    report = kmlc.evaluation.evaluate(model, validation_ds)
    kmlc.evaluation.write_report(report, model.label_names, args.out)
    print(f"validation mAP {report['mAP']:.4f}; outputs in {args.out}")


if __name__ == "__main__":
    main()
