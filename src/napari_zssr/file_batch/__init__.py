"""Many files, one at a time or on a Dask cluster, without any command-line parser.

A front end builds a :class:`~napari_zssr.file_batch.options.BatchOptions` (plain data) and
calls :func:`~napari_zssr.file_batch.batch.run_batch`. The modules, each one thing:

- :mod:`.errors`: :class:`UsageError`, a bad combination of options;
- :mod:`.options`: the options, and the checks that need no file;
- :mod:`.jobs`: inputs expanded, outputs planned, complete outputs found;
- :mod:`.record`: a file's axes and pixel size into the request, the run's record, a TIFF
  result written;
- :mod:`.progress`: the terminal progress bar;
- :mod:`.process`: one file, read to written;
- :mod:`.worker`: a Dask worker's device and threads;
- :mod:`.plane_tasks`: the planes of a stack as tasks;
- :mod:`.cluster`: the Dask cluster and the jobs on it;
- :mod:`.batch`: the whole batch.
"""
