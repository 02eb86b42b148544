"""The DICOM engine: selectors, rules, PS3.15 preset, UID map, provenance, streaming."""
