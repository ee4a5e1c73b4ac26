"""pamlib's own hook implementations that do not belong to a feature module."""
