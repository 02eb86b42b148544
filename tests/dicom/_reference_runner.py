"""Runs flywheel-migration 13.10.11 (in .venv-reference) on files: JSON on stdin, JSON on stdout.

Input: {"section": {...dicom section...}, "jobs": [{"src": path, "out_dir": path}]}.
Output: [{"name": output file name or null, "elements": {hex path: str(value)}}] per job.
Not a test module: test_differential.py runs it with the reference venv's python.
"""

import json
import os
import sys
import warnings

warnings.simplefilter("ignore")

import pydicom  # noqa: E402
from flywheel_migration.deidentify.dicom_file_profile import DicomFileProfile  # noqa: E402
from fs.osfs import OSFS  # noqa: E402


def dump(dataset, prefix=""):
    values = {}
    for elem in dataset:
        path = f"{prefix}{elem.tag:08x}"
        if elem.VR == "SQ":
            values[path] = f"SQ[{len(elem.value or [])}]"
            for index, item in enumerate(elem.value or []):
                values.update(dump(item, f"{path}.{index}."))
        elif elem.tag != 0x7FE00010:
            values[path] = str(elem.value)
    return values


def main():
    request = json.load(sys.stdin)
    results = []
    for job in request["jobs"]:
        profile = DicomFileProfile()
        profile.load_config(json.loads(json.dumps(request["section"])))
        src_dir, name = os.path.split(job["src"])
        os.makedirs(job["out_dir"], exist_ok=True)
        profile.process_files(OSFS(src_dir), OSFS(job["out_dir"]), [name])
        outputs = os.listdir(job["out_dir"])
        if not outputs:
            results.append({"name": None, "elements": {}})
            continue
        dataset = pydicom.dcmread(os.path.join(job["out_dir"], outputs[0]))
        results.append({"name": outputs[0], "elements": dump(dataset)})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
