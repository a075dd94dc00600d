"""`kmlc predict`: not written yet."""


def register(subparsers):
    parser = subparsers.add_parser("predict", help="(not written yet)")
    parser.set_defaults(func=run)


def run(args):
    raise NotImplementedError("kmlc predict is not written yet")
