"""`kmlc evaluate`: not written yet."""


def register(subparsers):
    parser = subparsers.add_parser("evaluate", help="(not written yet)")
    parser.set_defaults(func=run)


def run(args):
    raise NotImplementedError("kmlc evaluate is not written yet")
