"""Built-in dataset plugins: one module per family, each implementing
``dpbench_register_datasets`` like any third-party plugin. Modules starting with ``_`` are
shared helpers, not plugins."""
