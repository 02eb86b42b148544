"""Export: de-identify a source container into a destination project, idempotently, with a report.

Public API (the gear and the ``deid run`` command use only this)::

    from fw_gear_deid.export import ExportJob, run_export
    result = run_export(ExportJob(source=..., destination=..., report_dir=...))
    result.exit_code, result.summary, result.report_csv, result.report_json, result.rows

Locations are described in :mod:`fw_gear_deid.stores` (local folder path, ``fw://group/project[/…]``,
``fw://_id/<type>/<id>``). docs/stores.md documents modes, idempotency, conflicts and the report.
"""

from __future__ import annotations

from fw_gear_deid.export._pipeline import ExportJob, ExportResult, run_export
from fw_gear_deid.export._report import CSV_COLUMNS, STATES, ReportRow
from fw_gear_deid.keys import DateShiftRange

__all__ = [
    "CSV_COLUMNS",
    "STATES",
    "DateShiftRange",
    "ExportJob",
    "ExportResult",
    "ReportRow",
    "run_export",
]
