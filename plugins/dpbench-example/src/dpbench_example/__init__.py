"""dpbench-example: the smallest complete dpbench plugin, a template to copy.

One model (``example-mlp``) and one dataset (``example-oscillator``), registered through
the ``dpbench`` entry point in ``pyproject.toml`` that names :mod:`dpbench_example.plugin`.
"""

__version__ = "0.1.0"
