"""`kmlc export`: not written yet."""


def register(subparsers):
    parser = subparsers.add_parser("export", help="(not written yet)")
    parser.set_defaults(func=run)


def run(args):
    raise NotImplementedError("kmlc export is not written yet")
