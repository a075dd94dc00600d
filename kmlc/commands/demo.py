"""`kmlc demo`: not written yet."""


def register(subparsers):
    parser = subparsers.add_parser("demo", help="(not written yet)")
    parser.set_defaults(func=run)


def run(args):
    raise NotImplementedError("kmlc demo is not written yet")
