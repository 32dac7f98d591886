"""What the FLAN-T5 detoxification lab's notebooks share: settings, data, models, the tiny
world, the CLI. Notebooks import from the modules (`detox_helpers.settings`, `.data`, ...)."""
