"""Words that are never identifying on their own, so the gate does not look for them.

Two lists with different reach, because a name is worth more false positives than free text:

* :data:`NEVER_IDENTIFYING` applies to every kind: name titles and suffixes, the placeholders profiles
  write (``ANONYMOUS``, ``REMOVED``...), vendor words that live in private-creator strings by design
  (PEERS.md §11: the only "leaks" dicognito showed besides a real one were such words), and the generic
  words of institution names and addresses.
* :func:`common_vocabulary` adds, for free text, addresses and ``other`` values only, the English
  function words, a short clinical vocabulary and every word of the DICOM data dictionary's attribute
  names (``Contrast``, ``Bolus``, ``Acquisition``...): a removed comment "with contrast" must not block a
  file whose kept SeriesDescription says "CONTRAST".
"""

from __future__ import annotations

import re
from functools import cache

_TITLES = """
dr drs mr mrs ms miss mx prof sir dame rev fr sr jr ii iii iv md phd dds dmd rn np pa bsc msc mba
esq lic med dipl ing mag herr frau mme mlle
von van der den del della des les los las dos
"""

_PLACEHOLDERS = """
anonymous anonymized anonymised anonymise anonymize anon deidentified deid identified removed redacted
unknown none null nil empty blank test tester demo sample phantom dummy patient subject participant
volunteer case control xxx xxxx xxxxx yyy zzz nan undefined notapplicable
name names first last middle given family surname firstname lastname fullname enter text here
"""

_VENDORS = """
siemens philips toshiba canon hitachi agfa fuji fujifilm kodak carestream hologic gems gemed gehc
elscint picker marconi varian elekta accuray brainlab vital images vitrea mevis merge mitra medrad
esaote samsung mindray barco konica minolta shimadzu planmeca sirona dentsply carestream icad
medical systems healthcare healthineers imaging solutions software corporation corp inc ltd gmbh
"""

_INSTITUTION_AND_ADDRESS = """
hospital hospitals clinic clinics clinique klinik klinikum center centre centers centres medical medicine
university universitat universite univ college institute institut department dept radiology
imaging health general memorial saint foundation regional community county national children childrens
street road avenue boulevard lane drive court place square suite floor building unit apt apartment
north south east west city state country province usa
"""

_ENGLISH = """
the and for with without from into onto over under upon this that these those there here then than
are was were been being have has had having does did doing done will would shall should could might
must can cannot not nor but yet also very just only some such each every both either neither other
another more most less least many much few any all none what when where which while who whom whose
why how about above after again against before below between during through until within per via
left right upper lower mid side both bilateral history clinical indication impression findings
normal abnormal patient study series image images scan scans exam examination report reported
contrast without with axial sagittal coronal oblique localizer scout survey protocol sequence
routine screening follow followup diagnostic evaluation chest head brain neck spine abdomen pelvis
knee shoulder hand foot heart lung lungs liver kidney breast cardiac thorax cervical lumbar thoracic
weighted fluid attenuated inversion recovery diffusion perfusion angio angiography venography
mri ct pet spect ultrasound xray x-ray mammography fluoroscopy dose reconstruction recon slice
slices thickness phase frequency echo spin gradient fast turbo flash field fov matrix
"""


def _words(block: str) -> frozenset[str]:
    return frozenset(block.split())


#: Never searched for, whatever the kind of the value they come from.
NEVER_IDENTIFYING: frozenset[str] = (
    _words(_TITLES) | _words(_PLACEHOLDERS) | _words(_VENDORS) | _words(_INSTITUTION_AND_ADDRESS)
)


@cache
def common_vocabulary() -> frozenset[str]:
    """Words that carry no identity in free text (computed once per process)."""
    from pydicom._dicom_dict import DicomDictionary  # the attribute names, as data

    words: set[str] = set(_words(_ENGLISH))
    for entry in DicomDictionary.values():
        words.update(word.lower() for word in re.findall(r"[A-Za-z]{3,}", entry[2]))
    return frozenset(words | NEVER_IDENTIFYING)
