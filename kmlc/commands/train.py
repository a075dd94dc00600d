"""`kmlc train`: not written yet."""


def register(subparsers):
    parser = subparsers.add_parser("train", help="(not written yet)")
    parser.set_defaults(func=run)


def run(args):
    raise NotImplementedError("kmlc train is not written yet")
