"""Built-in model plugins: one module per family, each implementing
``dpbench_register_models`` like any third-party plugin. Modules starting with ``_`` are
shared building blocks, not plugins."""
