"""One module per `dicom-hub` subcommand; each has `add_parser(subparsers)` and `run(args)`."""
