"""dpbench-dysts: the dysts database of chaotic flows as one dpbench dataset, ``dysts``,
selected with ``system=`` (e.g. ``dpbench run --datasets dysts:system=Lorenz``)."""

__version__ = "0.1.0"
