"""Configuration files: loading with line numbers, validation, interpolation."""
