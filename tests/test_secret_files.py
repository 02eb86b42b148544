"""One reader for every secret file (``deid run``/``preview``/``verify`` and the gear's input): the
same refusals with the same reasons, the file named, its content never echoed, exit code 2."""

from __future__ import annotations

import pytest

from fw_gear_deid.cli import main
from fw_gear_deid.gear import GearConfigError, read_secret, read_settings, resolve_keys
from fw_gear_deid.keys import MAX_SECRET_BYTES, Keys, SecretFileError, read_secret_file

#: Bytes that must never reach a message: a secret file's content, whatever is wrong with it.
CONTENT = b"hunter2-not-shown"

BAD_FILES = {
    "empty": (b"", "it is empty"),
    "whitespace only": (b"  \n\t\n", "it is empty"),
    "not UTF-8": (CONTENT + b"\xff\xfe", "not UTF-8 text"),
    "too large": (CONTENT * (MAX_SECRET_BYTES // len(CONTENT) + 1), "larger than"),
}


@pytest.fixture(params=sorted(BAD_FILES), ids=str)
def bad_secret(request, tmp_path):
    content, reason = BAD_FILES[request.param]
    path = tmp_path / "secret.txt"
    path.write_bytes(content)
    return path, reason


def test_the_secret_is_the_file_stripped_of_surrounding_whitespace(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("  s3cret value \n", encoding="utf-8")
    assert read_secret_file(path) == "s3cret value"


def test_a_secret_file_of_exactly_the_limit_is_read(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_bytes(b"k" * MAX_SECRET_BYTES)
    assert len(read_secret_file(path)) == MAX_SECRET_BYTES
    path.write_bytes(b"k" * (MAX_SECRET_BYTES + 1))
    with pytest.raises(SecretFileError, match="larger than"):
        read_secret_file(path)


def test_a_bad_secret_file_is_refused_with_its_reason(bad_secret):
    path, reason = bad_secret
    with pytest.raises(SecretFileError, match=reason) as caught:
        read_secret_file(path)
    assert CONTENT.decode() not in str(caught.value)


def test_a_missing_secret_file_says_it_cannot_be_read(tmp_path):
    with pytest.raises(SecretFileError, match=r"cannot read it \(No such file"):
        read_secret_file(tmp_path / "missing")


def test_the_gear_names_its_input_and_gives_the_same_reason(bad_secret):
    path, reason = bad_secret
    with pytest.raises(GearConfigError, match=f"input secret_file: {reason}"):
        read_secret(path)


def test_the_gear_never_falls_back_to_the_environment_for_a_bad_secret_file(bad_secret):
    path, reason = bad_secret
    settings = read_settings({"destination_project": "g/p"})
    with pytest.raises(GearConfigError, match=reason):
        resolve_keys(settings, str(path), {"DEID_SECRET": "environment-secret"})
    good = path.with_name("good.txt")
    good.write_text("file-secret\n", encoding="utf-8")
    keys = resolve_keys(settings, str(good), {"DEID_SECRET": "environment-secret"})
    assert keys.fingerprint == Keys("file-secret").fingerprint


def _command(name: str, secret: str, tmp_path) -> list[str]:
    profile = tmp_path / "profile.yaml"
    profile.write_text("name: p\ndicom:\n  fields: []\n", encoding="utf-8")
    source, dest = tmp_path / "src", tmp_path / "dest"
    source.mkdir(exist_ok=True)
    if name == "run":
        return ["run", str(source), str(dest), "--profile", str(profile), "--secret-file", secret]
    if name == "preview":
        return ["preview", "--profile", str(profile), "--secret-file", secret, str(profile)]
    return ["verify", str(source), str(dest), "--profile", str(profile), "--secret-file", secret]


@pytest.mark.parametrize("command", ["run", "preview", "verify"])
def test_every_command_refuses_a_bad_secret_file_the_same_way(
    command, bad_secret, tmp_path, capsys, monkeypatch
):
    # A key in the environment must not stand in for a secret file that was given but is unusable.
    monkeypatch.setenv("DEID_SECRET", "environment-secret")
    path, reason = bad_secret
    code = main(_command(command, str(path), tmp_path))
    captured = capsys.readouterr()
    assert code == 2, captured
    assert f"deid {command}: {path}: {reason}" in captured.err
    assert CONTENT.decode() not in captured.out + captured.err
    assert not (tmp_path / "dest").exists()  # nothing written


@pytest.mark.parametrize("command", ["run", "preview", "verify"])
@pytest.mark.parametrize(
    ("kind", "reason"),
    [("missing", "cannot read it (No such file"), ("a folder", "cannot read it (Is a directory")],
)
def test_every_command_refuses_an_unreadable_secret_file_with_exit_2(
    command, kind, reason, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("DEID_SECRET", "environment-secret")
    path = tmp_path / "secret.txt"
    if kind == "a folder":
        path.mkdir()
    code = main(_command(command, str(path), tmp_path))
    captured = capsys.readouterr()
    assert code == 2, captured
    assert f"deid {command}: {path}: {reason}" in captured.err
    assert not (tmp_path / "dest").exists()
