"""Pure torch + numpy implementation of ZSSR (no Qt, no napari)."""
