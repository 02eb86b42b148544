"""Every mistake is an error with its exact message and line, never silently ignored."""

from __future__ import annotations

import textwrap

import pytest

from fw_gear_deid.errors import ProfileError
from fw_gear_deid.profile import load_profile, validate_profile_text

# (scenario, profile text, every expected issue as "LINE: path: message (did you mean 'X'?)")
CASES = [
    (
        "misspelt_section_option_suggests_salt",
        """
        dicom:
          hash-salt: abc
        """,
        ["2: dicom.hash-salt: unknown key 'hash-salt' (did you mean 'salt'?)"],
    ),
    (
        "misspelt_remove_private_tags",
        """
        dicom:
          remove-private-tag: true
        """,
        [
            "2: dicom.remove-private-tag: unknown key 'remove-private-tag' "
            "(did you mean 'remove-private-tags'?)"
        ],
    ),
    (
        "unknown_top_level_key",
        """
        dicom: {}
        frobnicate: 1
        """,
        ["2: frobnicate: unknown key 'frobnicate'"],
    ),
    (
        "misspelt_section_name",
        """
        dicon:
          fields: []
        """,
        [
            "1: (root): the profile has no file section (dicom, jpg, png, tiff, xml, json, "
            "key-value-text-file, csv, tsv, zip, filename): every file would be skipped",
            "1: dicon: unknown key 'dicon' (did you mean 'dicom'?)",
        ],
    ),
    (
        "top_level_salt_is_misplaced",
        """
        salt: abc
        dicom: {}
        """,
        [
            "1: salt: unknown key 'salt': salt belongs in each file section, e.g. "
            "dicom: {salt: ...}; at the top level Flywheel ignores it"
        ],
    ),
    (
        "top_level_preset_is_misplaced",
        """
        preset: ps3.15-basic
        dicom: {}
        """,
        [
            "1: preset: unknown key 'preset': preset belongs in the dicom section: "
            "dicom: {preset: ps3.15-basic}"
        ],
    ),
    (
        "misspelt_dicom_keyword",
        """
        dicom:
          fields:
            - name: PateintName
              remove: true
        """,
        [
            "3: dicom.fields[0].name: unknown DICOM keyword 'PateintName' "
            "(did you mean 'PatientName'?)"
        ],
    ),
    (
        "unknown_key_in_field_entry_suggests_action",
        """
        dicom:
          fields:
            - name: PatientName
              remvoe: true
        """,
        ["4: dicom.fields[0].remvoe: unknown key 'remvoe' (did you mean 'remove'?)"],
    ),
    (
        "two_actions_in_one_field",
        """
        dicom:
          fields:
            - name: PatientName
              hash: true
              remove: true
        """,
        [
            "5: dicom.fields[0].remove: one action per field: this entry has hash and remove; "
            "keep one"
        ],
    ),
    (
        "remove_false",
        """
        dicom:
          fields:
            - name: PatientName
              remove: false
        """,
        [
            "4: dicom.fields[0].remove: remove: false is not allowed: Flywheel applies the "
            "action whatever its value; delete the entry (or use keep: true) to leave the field "
            "unchanged"
        ],
    ),
    (
        "hash_false",
        """
        json:
          fields:
            - name: a.b
              hash: false
        """,
        [
            "4: json.fields[0].hash: hash: false is not allowed: Flywheel applies the action "
            "whatever its value; delete the entry (or use keep: true) to leave the field "
            "unchanged"
        ],
    ),
    (
        "field_without_name_or_regex",
        """
        dicom:
          fields:
            - remove: true
        """,
        ["3: dicom.fields[0]: a field needs a name (or a regex) saying what it selects"],
    ),
    (
        "field_with_name_and_regex",
        """
        dicom:
          fields:
            - name: PatientName
              regex: '.*Name'
              remove: true
        """,
        ["4: dicom.fields[0].regex: a field has either name or regex, not both"],
    ),
    (
        "empty_field_entries",
        """
        dicom:
          fields:
            -
            - {}
        """,
        [
            "3: dicom.fields[0]: empty field entry: give a name (or regex) and one action",
            "4: dicom.fields[1]: empty field entry: give a name (or regex) and one action",
        ],
    ),
    (
        "duplicate_field_by_keyword_and_tag",
        """
        dicom:
          fields:
            - name: PatientName
              remove: true
            - name: (0010,0010)
              replace-with: X
        """,
        ["5: dicom.fields[1]: duplicate field: it selects the same as dicom.fields[0] (line 3)"],
    ),
    (
        "duplicate_jpg_field_ignoring_case",
        """
        jpg:
          fields:
            - name: Artist
              remove: true
            - name: artist
              remove: true
        """,
        ["5: jpg.fields[1]: duplicate field: it selects the same as jpg.fields[0] (line 3)"],
    ),
    (
        "csv_filter_without_wildcard_never_matches",
        """
        csv:
          file-filter: .csv
        """,
        [
            "2: csv.file-filter: file-filter '.csv' matches only a file named exactly '.csv' "
            "(a glob needs a wildcard) (did you mean '*.csv'?)"
        ],
    ),
    (
        "tsv_filter_list_with_dead_pattern",
        """
        tsv:
          file-filter:
            - '*.tsv'
            - .TSV
        """,
        [
            "4: tsv.file-filter[1]: file-filter '.TSV' matches only a file named exactly "
            "'.TSV' (a glob needs a wildcard) (did you mean '*.TSV'?)"
        ],
    ),
    (
        "file_filter_regex_does_not_compile",
        """
        json:
          file-filter: 'r!(*.json'
        """,
        [
            "2: json.file-filter: file-filter regex does not compile: nothing to repeat at "
            "position 1"
        ],
    ),
    (
        "hash_on_uid",
        """
        dicom:
          fields:
            - name: StudyInstanceUID
              hash: true
        """,
        [
            "4: dicom.fields[0].hash: StudyInstanceUID: hash cannot apply to a UID (VR UI): "
            "use hashuid"
        ],
    ),
    (
        "hash_on_a_date",
        """
        dicom:
          fields:
            - name: PatientBirthDate
              hash: true
        """,
        [
            "4: dicom.fields[0].hash: PatientBirthDate: hash cannot apply to VR DA: the "
            "16-hex-digit hash is not a valid DA value"
        ],
    ),
    (
        "replace_with_text_on_us",
        """
        dicom:
          fields:
            - name: Rows
              replace-with: abc
        """,
        ["4: dicom.fields[0].replace-with: Rows: 'abc' is not a valid US value (a whole number)"],
    ),
    (
        "replace_with_out_of_range_us",
        """
        dicom:
          fields:
            - name: Columns
              replace-with: 70000
        """,
        ["4: dicom.fields[0].replace-with: Columns: 70000 is out of range for VR US (0 to 65535)"],
    ),
    (
        "replace_with_bad_date",
        """
        dicom:
          fields:
            - name: StudyDate
              replace-with: 2020-01-02
        """,
        [
            "4: dicom.fields[0].replace-with: StudyDate: '2020-01-02' is not a valid DA "
            "value (YYYYMMDD)"
        ],
    ),
    (
        "replace_with_unquoted_yes_is_a_boolean",
        """
        dicom:
          fields:
            - name: PatientIdentityRemoved
              replace-with: YES
        """,
        [
            "4: dicom.fields[0].replace-with: PatientIdentityRemoved: true is not a valid CS "
            "value (YAML reads an unquoted YES as true: quote it)"
        ],
    ),
    (
        "replace_with_too_long_for_sh",
        """
        dicom:
          fields:
            - name: AccessionNumber
              replace-with: ABCDEFGHIJKLMNOPQRSTUVWXYZ
        """,
        [
            "4: dicom.fields[0].replace-with: AccessionNumber: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' "
            "is longer than 16 characters (VR SH)"
        ],
    ),
    (
        "jitter_on_text",
        """
        dicom:
          fields:
            - name: PatientName
              jitter: true
        """,
        ["4: dicom.fields[0].jitter: PatientName: jitter needs a numeric element, not VR PN"],
    ),
    (
        "increment_date_on_a_datetime",
        """
        dicom:
          fields:
            - name: AcquisitionDateTime
              increment-date: true
        """,
        [
            "4: dicom.fields[0].increment-date: AcquisitionDateTime: increment-date cannot "
            "apply to VR DT; use increment-datetime"
        ],
    ),
    (
        "hashuid_on_short_text",
        """
        dicom:
          fields:
            - name: AccessionNumber
              hashuid: true
        """,
        [
            "4: dicom.fields[0].hashuid: AccessionNumber: hashuid cannot apply to VR SH: it "
            "writes a UID of up to 64 characters; use hash or replace-with"
        ],
    ),
    (
        "regex_does_not_compile",
        """
        dicom:
          fields:
            - regex: '(unclosed'
              remove: true
        """,
        [
            "3: dicom.fields[0].regex: regex does not compile: missing ), unterminated "
            "subpattern at position 0"
        ],
    ),
    (
        "regex_field_in_jpg",
        """
        jpg:
          fields:
            - regex: 'Date.*'
              remove: true
        """,
        [
            "3: jpg.fields[0].regex: regex fields are not supported in the jpg section (only "
            "dicom, json and flywheel); use name"
        ],
    ),
    (
        "unknown_date_format_code",
        """
        dicom:
          date-format: '%Y%Q'
        """,
        ["2: dicom.date-format: %Q is not a supported date/time format code"],
    ),
    (
        "field_datetime_format_with_lone_percent",
        """
        dicom:
          fields:
            - name: AcquisitionDateTime
              increment-datetime: true
              datetime-format: '%Y%m%d%'
        """,
        ["5: dicom.fields[0].datetime-format: format '%Y%m%d%' ends with a lone %"],
    ),
    (
        "recurse_sequence_with_regex",
        """
        dicom:
          recurse-sequence: true
          fields:
            - regex: '.*InstanceUID'
              hashuid: true
        """,
        ["4: dicom.fields[0].regex: a regex field cannot be combined with recurse-sequence: true"],
    ),
    (
        "recurse_sequence_with_sequence_path",
        """
        dicom:
          recurse-sequence: true
          fields:
            - name: OtherPatientIDsSequence.*.PatientID
              remove: true
        """,
        ["4: dicom.fields[0].name: a sequence path cannot be combined with recurse-sequence: true"],
    ),
    (
        "regex_sub_output_uses_unknown_group",
        r"""
        dicom:
          fields:
            - name: PatientComments
              regex-sub:
                - input-regex: '^(?P<site>[A-Z]+)-(?P<mrn>\d+)$'
                  output: '{site}-{c}'
        """,
        [
            "6: dicom.fields[0].regex-sub[0].output: output uses 'c', which is neither a "
            "named group of input-regex nor in groups"
        ],
    ),
    (
        "regex_sub_without_output",
        r"""
        dicom:
          fields:
            - name: PatientComments
              regex-sub:
                - input-regex: '^(?P<a>.+)$'
        """,
        ["5: dicom.fields[0].regex-sub[0]: missing required key 'output'"],
    ),
    (
        "unknown_exif_tag",
        """
        jpg:
          fields:
            - name: Artst
              remove: true
        """,
        ["3: jpg.fields[0].name: 'Artst' is not an EXIF tag name (did you mean 'Artist'?)"],
    ),
    (
        "unknown_tiff_tag",
        """
        tiff:
          fields:
            - name: ImageDescripton
              remove: true
        """,
        [
            "3: tiff.fields[0].name: 'ImageDescripton' is not a TIFF tag name "
            "(did you mean 'ImageDescription'?)"
        ],
    ),
    (
        "unknown_public_png_chunk",
        """
        png:
          fields:
            - name: tEXT
              remove: true
            - name: zTXX
              remove: true
        """,
        [
            "5: png.fields[1].name: 'zTXX' is not a known public PNG chunk type "
            "(did you mean 'zTXt'?)"
        ],
    ),
    (
        "png_replace_with",
        """
        png:
          fields:
            - name: tEXt
              replace-with: x
        """,
        [
            "4: png.fields[0].replace-with: a PNG chunk type supports only remove and keep, "
            "not replace-with (name a tEXt/zTXt/iTXt keyword, e.g. Author, to edit its text)"
        ],
    ),
    (
        "xml_name_is_not_an_absolute_xpath",
        """
        xml:
          fields:
            - name: Report/Name
              remove: true
        """,
        ["3: xml.fields[0].name: an xml field name is an XPath starting with / or ./"],
    ),
    (
        "xml_xpath_does_not_compile",
        """
        xml:
          fields:
            - name: '/Report[['
              remove: true
        """,
        ["3: xml.fields[0].name: XPath does not compile: Invalid expression"],
    ),
    (
        "uid_numeric_name_node_count",
        """
        dicom:
          uid-numeric-name: 1.2.3
        """,
        [
            "2: dicom.uid-numeric-name: uid-numeric-name has 3 nodes but uid-prefix-fields "
            "is 4: they must be equal"
        ],
    ),
    (
        "uid_numeric_name_under_flywheel_root",
        """
        dicom:
          uid-numeric-name: 2.16.840.1.114570.3
          uid-prefix-fields: 6
        """,
        [
            "2: dicom.uid-numeric-name: under Flywheel's root OID only the migration-toolkit "
            "zone is allowed (did you mean '2.16.840.1.114570.2.2'?)"
        ],
    ),
    (
        "jitter_range_zero",
        """
        dicom:
          fields:
            - name: PatientWeight
              jitter: true
              jitter-range: 0
        """,
        ["5: dicom.fields[0].jitter-range: jitter-range must be greater than 0"],
    ),
    (
        "int_jitter_below_one",
        """
        dicom:
          jitter-type: int
          jitter-range: 0.5
        """,
        ["3: dicom.jitter-range: jitter-range must be at least 1 when jitter-type is int"],
    ),
    (
        "option_of_another_action",
        """
        dicom:
          fields:
            - name: PatientBirthDate
              remove: true
              date-format: '%Y'
        """,
        [
            "5: dicom.fields[0].date-format: date-format is an option of increment-date, not of remove"
        ],
    ),
    (
        "option_without_action",
        """
        dicom:
          fields:
            - name: PatientWeight
              jitter-range: 3
        """,
        [
            "4: dicom.fields[0].jitter-range: jitter-range needs an action (jitter or "
            "increment-date or increment-datetime) in the same entry"
        ],
    ),
    (
        "bad_datetime_min",
        """
        dicom:
          fields:
            - name: StudyDate
              increment-date: true
              datetime-min: -80yrs
        """,
        [
            "5: dicom.fields[0].datetime-min: datetime-min must be a date YYYYMMDD or a "
            "relative bound like -80years, +3weeks, -5days"
        ],
    ),
    (
        "jitter_unit_misspelt",
        """
        dicom:
          fields:
            - name: StudyDate
              increment-date: true
              jitter-date: true
              jitter-unit: day
        """,
        [
            "6: dicom.fields[0].jitter-unit: the string 'day' is not one of: weeks, days, "
            "hours, minutes, seconds (did you mean 'days'?)"
        ],
    ),
    (
        "key_value_without_delimiter",
        """
        key-value-text-file:
          fields: []
        """,
        ["1: key-value-text-file: missing required key 'delimiter'"],
    ),
    (
        "key_value_unknown_encoding",
        """
        key-value-text-file:
          delimiter: ' = '
          encoding: utf-9
        """,
        ["3: key-value-text-file.encoding: unknown text encoding 'utf-9'"],
    ),
    (
        "preset_options_unknown_and_unsupported",
        """
        dicom:
          preset: ps3.15-basic
          options: [retain-uids, clean-pixel-data, retain-uid]
        """,
        [
            "3: dicom.options[1]: option clean-pixel-data needs pixel-data analysis, which "
            "this gear does not do",
            "3: dicom.options[2]: unknown PS3.15 option 'retain-uid' (did you mean 'retain-uids'?)",
        ],
    ),
    (
        "options_without_preset",
        """
        dicom:
          options: [retain-uids]
        """,
        ["2: dicom.options: options need a preset: add preset: ps3.15-basic"],
    ),
    (
        "unknown_preset",
        """
        dicom:
          preset: ps3.15-basik
        """,
        [
            "2: dicom.preset: the string 'ps3.15-basik' is not one of: ps3.15-basic "
            "(did you mean 'ps3.15-basic'?)"
        ],
    ),
    (
        "both_longitudinal_date_options",
        """
        dicom:
          preset: ps3.15-basic
          options:
            - retain-long-full-dates
            - retain-long-modified-dates
        """,
        [
            "3: dicom.options: retain-long-full-dates and retain-long-modified-dates exclude "
            "each other: choose one"
        ],
    ),
    (
        "deid_log_writes_phi",
        """
        deid-log: /secure/deid.csv
        dicom: {}
        """,
        [
            "1: deid-log: deid-log writes the original (PHI) values to a CSV file; this gear "
            "never writes one: remove the key (the report lists the actions without values)"
        ],
    ),
    (
        "encrypt_is_not_supported",
        """
        secret-key: '0123456789abcdef'
        dicom:
          fields:
            - name: InstitutionName
              encrypt: true
        """,
        [
            "5: dicom.fields[0].encrypt: encrypt is not supported by this gear (it would keep "
            "recoverable PHI in the output): use remove, hash or replace-with"
        ],
    ),
    (
        "nifti_section_has_no_handler",
        """
        nifti:
          fields: []
        """,
        ["1: nifti: NIfTI files are not supported by this gear (no handler): remove the section"],
    ),
    (
        "boolean_option_given_as_string",
        """
        dicom:
          remove-private-tags: "yes"
        """,
        [
            "2: dicom.remove-private-tags: must be true or false, not the string 'yes' (write "
            "true or false without quotes)"
        ],
    ),
    (
        "numeric_salt_must_be_quoted",
        """
        dicom:
          salt: 12345
        """,
        ["2: dicom.salt: must be a string, not the number 12345 (quote it: '12345')"],
    ),
    (
        "patient_age_units_not_an_enum_value",
        """
        dicom:
          patient-age-units: years
        """,
        ["2: dicom.patient-age-units: the string 'years' is not one of: Y, M, D"],
    ),
    (
        "private_tag_with_even_group",
        """
        dicom:
          fields:
            - name: (0010, "X", 01)
              keep: true
        """,
        [
            "3: dicom.fields[0].name: '(0010, \"X\", 01)' is not a private tag: group 0010 is "
            "even (private groups are odd)"
        ],
    ),
    (
        "sequence_path_without_index",
        """
        dicom:
          fields:
            - name: OtherPatientIDsSequence.PatientID
              remove: true
        """,
        [
            "3: dicom.fields[0].name: sequence path 'OtherPatientIDsSequence.PatientID' needs "
            "an item index (a number or *) after every sequence, e.g. "
            "OtherPatientIDsSequence.*.PatientID"
        ],
    ),
    (
        "dicom_filename_output_unknown_variable",
        r"""
        dicom:
          filenames:
            - input-regex: '^(?P<stem>.+)\.dcm$'
              output: '{stem}_{SOPInstanceUIDD}.dcm'
        """,
        [
            "4: dicom.filenames[0].output: output uses 'SOPInstanceUIDD', which is neither a "
            "named group of input-regex nor a DICOM keyword (did you mean 'SOPInstanceUID'?)"
        ],
    ),
    (
        "dicom_filename_group_collides_with_keyword",
        r"""
        dicom:
          filenames:
            - input-regex: '^(?P<Modality>.+)\.dcm$'
              output: '{Modality}.dcm'
        """,
        [
            "3: dicom.filenames[0].input-regex: named group 'Modality' has the name of a DICOM "
            "keyword: rename it"
        ],
    ),
    (
        "filename_rule_without_input_regex",
        """
        filename:
          filenames:
            - output: 'x.txt'
        """,
        ["3: filename.filenames[0]: missing required key 'input-regex'"],
    ),
    (
        "filename_section_output_uses_unknown_group",
        r"""
        filename:
          filenames:
            - input-regex: '^(?P<stem>.+)\.txt$'
              output: '{stme}.txt'
        """,
        [
            "4: filename.filenames[0].output: output uses 'stme', which is not a named group "
            "of input-regex (did you mean 'stem'?)"
        ],
    ),
    (
        "flywheel_subject_field_misspelt",
        """
        dicom: {}
        flywheel:
          subject:
            fields:
              - name: lable
                remove: true
        """,
        [
            "5: flywheel.subject.fields[0].name: 'lable' is not a subject field this gear "
            "exports (firstname, lastname, date_of_birth, sex, cohort, mlset, ethnicity, race, "
            "species, strain, info, type, label, tags) (did you mean 'label'?)"
        ],
    ),
    (
        "flywheel_subject_sex_enum",
        """
        dicom: {}
        flywheel:
          subject:
            fields:
              - name: sex
                replace-with: Male
        """,
        [
            "6: flywheel.subject.fields[0].replace-with: subject.sex must be one of male, "
            "female, other, unknown (did you mean 'male'?)"
        ],
    ),
    (
        "flywheel_include_info_header_only_on_file",
        """
        dicom: {}
        flywheel:
          session:
            include-info-header: true
        """,
        ["4: flywheel.session.include-info-header: unknown key 'include-info-header'"],
    ),
    (
        "section_must_be_a_mapping",
        """
        dicom: [PatientName]
        """,
        ["1: dicom: must be a mapping, not a list"],
    ),
    (
        "profile_is_not_a_mapping",
        """
        - dicom
        """,
        ["1: (root): a profile is a mapping of sections"],
    ),
    (
        "key_written_twice",
        """
        dicom:
          salt: a
          salt: b
        """,
        ["3: dicom.salt: key 'salt' is written twice (first on line 2)"],
    ),
    (
        "python_object_tag_refused",
        """
        dicom:
          salt: !!python/object/apply:os.system ['echo pwned']
        """,
        ["2: dicom.salt: YAML tag tag:yaml.org,2002:python/object/apply:os.system is not allowed"],
    ),
    (
        "yaml_syntax_error",
        """
        dicom:
          fields: [
        """,
        ["3: (root): YAML syntax error: expected the node content, but found '<stream end>'"],
    ),
    (
        "unsupported_table_reader",
        """
        csv:
          file-filter: '*.csv'
          reader: excel
        """,
        [
            "3: csv.reader: reader 'excel' is not supported by this gear: the csv section "
            "reads delimited text only (reader: csv)"
        ],
    ),
    (
        "regex_sub_group_not_a_keyword",
        r"""
        dicom:
          fields:
            - name: PatientComments
              regex-sub:
                - input-regex: '^(?P<a>.+)$'
                  output: '{a}{PatientIDD}'
                  groups:
                    - name: PatientIDD
                      keep: true
        """,
        [
            "8: dicom.fields[0].regex-sub[0].groups[0].name: unknown DICOM keyword "
            "'PatientIDD' (did you mean 'PatientID'?)"
        ],
    ),
    (
        "variable_used_without_mapping",
        """
        dicom:
          fields:
            - name: PatientID
              replace-with: '{{ NEW_ID }}'
        """,
        None,  # load_profile without variables: see test below
    ),
]

TABLE = [case for case in CASES if case[2] is not None]


def _issues(text: str) -> list[str]:
    issues = validate_profile_text(textwrap.dedent(text).lstrip("\n"), "p.yaml")
    return [str(issue).removeprefix("p.yaml:") for issue in issues]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in TABLE], ids=[c[0] for c in TABLE])
def test_invalid_profile_reports_exact_message_and_line(text, expected):
    assert _issues(text) == expected


def test_table_has_at_least_forty_invalid_profiles():
    assert len(TABLE) >= 40


def test_load_profile_raises_profile_error_carrying_every_issue():
    text = textwrap.dedent(
        """
        dicom:
          hash-salt: x
          fields:
            - name: PateintName
              remove: true
            - name: PatientID
              remove: false
        """
    ).lstrip("\n")
    with pytest.raises(ProfileError) as caught:
        load_profile(text=text, source="site.yaml")
    lines = [issue.line for issue in caught.value.issues]
    assert lines == sorted(lines) == [2, 4, 7]
    assert str(caught.value).splitlines()[0].startswith("site.yaml:2: dicom.hash-salt:")


def test_profile_with_variables_needs_values_when_loaded_for_use():
    text = "dicom:\n  fields:\n    - name: PatientID\n      replace-with: '{{ NEW_ID }}'\n"
    with pytest.raises(ProfileError) as caught:
        load_profile(text=text, source="p.yaml")
    assert [str(issue) for issue in caught.value.issues] == [
        "p.yaml:4: dicom.fields[0].replace-with: variable 'NEW_ID' has no value: give a "
        "mapping CSV with a NEW_ID column"
    ]
