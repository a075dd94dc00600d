"""`kmlc data`: not written yet."""


def register(subparsers):
    parser = subparsers.add_parser("data", help="(not written yet)")
    parser.set_defaults(func=run)


def run(args):
    raise NotImplementedError("kmlc data is not written yet")
