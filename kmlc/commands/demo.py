"""`kmlc demo --out DIR`: the whole job, offline, in a few minutes."""

import time


def register(subparsers):
    parser = subparsers.add_parser(
        "demo",
        help="train and compare the baseline and the full model on synthetic scenes",
        description=(
            "Generate synthetic multi-label scenes in which labels co-occur by "
            "rule, train the baseline and the full model on them, and print "
            "the two side by side. Offline; a few minutes on 2 CPU cores."
        ),
    )
    parser.add_argument("--out", default="kmlc-demo", help="output directory")
    parser.add_argument("--images", type=int, default=2000, help="synthetic images")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--backbone", default="smallcnn")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


ROWS = (
    ("mAP", "mAP"),
    ("CP", "per-class precision"),
    ("CR", "per-class recall"),
    ("CF1", "per-class F1"),
    ("OP", "overall precision"),
    ("OR", "overall recall"),
    ("OF1", "overall F1"),
    ("N+", "labels recalled"),
)


def format_table(results):
    """The presets' metrics side by side, as text."""
    presets = list(results)
    lines = [f"{'':22}" + "".join(f"{p:>12}" for p in presets)]
    for key, name in ROWS:
        cells = []
        for preset in presets:
            value = results[preset].get(key)
            cells.append(
                f"{value:>12}" if isinstance(value, int) else f"{value:>12.3f}"
            )
        lines.append(f"{name:22}" + "".join(cells))
    return "\n".join(lines)


def run(args):
    import os

    from kmlc.demo import DemoOptions
    from kmlc.demo import run_demo

    options = DemoOptions(
        num_images=args.images,
        image_size=args.image_size,
        epochs=args.epochs,
        backbone=args.backbone,
        seed=args.seed,
    )
    start = time.perf_counter()
    results = run_demo(args.out, options)
    minutes = (time.perf_counter() - start) / 60
    out = os.path.abspath(args.out)
    print()
    print(f"Validation images of the synthetic scenes ({minutes:.1f} min):")
    print(format_table(results))
    print()
    print(f"full model:        {os.path.join(out, 'model.keras')}")
    print(f"metrics:           {os.path.join(out, 'metrics.json')}")
    print(f"per-label AP:      {os.path.join(out, 'ap_comparison.png')}")
    print(f"label graph:       {os.path.join(out, 'label_graph.png')}")
    print(f"attention maps:    {os.path.join(out, 'attention_maps.png')}")
    print(f"training runs:     {os.path.join(out, 'runs')}")
    print(
        f"try: kmlc predict --model {os.path.join(out, 'model.keras')} "
        f"{os.path.join(out, 'data', 'images', '00000.png')}"
    )
    return 0
