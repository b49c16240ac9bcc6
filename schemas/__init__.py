"""pandera data contracts: one module per bundled dataset, plus inference for new data."""
