"""Sub-commands of the ``dpbench`` CLI, one module each (``add_parser(subparsers)``)."""
