"""`kmlc serve`: not written yet."""


def register(subparsers):
    parser = subparsers.add_parser("serve", help="(not written yet)")
    parser.set_defaults(func=run)


def run(args):
    raise NotImplementedError("kmlc serve is not written yet")
