"""The package's version, in a module of its own so that no part of the package imports the
package ``__init__`` (which loads the public functions lazily) to read it."""

__version__ = "0.1.0"
