"""The napari front end: the dock widget (panels, worker, layers), the writer, the sample.

Imported by napari through the manifest (``napari.yaml``); the library and the command line
never import it.
"""
