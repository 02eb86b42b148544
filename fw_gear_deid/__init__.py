"""De-identify medical-imaging datasets with Flywheel de-id profiles.

The package is organised as the pipeline it implements:

``profile``  load, validate and select the YAML de-id profile (cascade, mapping CSV)
``formats``  one handler per file type, all behind :class:`fw_gear_deid.formats.FormatHandler`
``check``    the residual-PHI gate that scans every output before it is written
``stores``   where data lives (local folder store, Flywheel)
``export``   walk a source container, de-identify, check, write the destination, report
``cli``      the ``deid`` command; ``run.py`` (the gear) is a thin layer over the same code
"""

__version__ = "0.1.0"

#: Edition of DICOM PS3.15 Table E.1-1 shipped in ``fw_gear_deid/standard``.
STANDARD_EDITION = "2024b"
