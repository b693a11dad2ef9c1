"""Files: an output folder held by one run at a time; every file an option names read as a regular file only
(a FIFO never hangs, a device is never read); CSV text cells made inert."""

import os

import pytest
from idia_testkit import assert_one_line_error, noise_people, run_idia

from idia.errors import InputError
from idia.io import check_regular_file, csv_text, output_lock, read_text_file, sha256_file


def test_an_output_folder_in_use_is_refused_with_the_holders_pid(tmp_path):
    with output_lock(tmp_path / "out"):
        with pytest.raises(InputError, match=rf"is in use by another idia run \(pid {os.getpid()}\)"):
            with output_lock(tmp_path / "out"):
                pass
        proc = run_idia("attack", "--model", "world", "--people", tmp_path / "people", "--out", tmp_path / "out", "-q")
        assert_one_line_error(proc, f"{tmp_path / 'out'}: is in use by another idia run (pid {os.getpid()})")
    with output_lock(tmp_path / "out"):  # released: usable again
        pass


def test_hashing_or_reading_a_fifo_or_a_device_is_one_line_never_a_hang(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        for read in (sha256_file, lambda p: read_text_file(p, "prompts file"), check_regular_file):
            with pytest.raises(InputError, match="not a regular file"):
                read(path)
    check_regular_file(tmp_path)  # a folder (a model folder) and a missing file are left to their readers
    check_regular_file(tmp_path / "missing.pt")


@pytest.mark.parametrize("option", ["--checkpoint", "--prompts", "--labels", "--perturbation"])
def test_a_fifo_or_a_device_as_any_file_option_is_one_line(tmp_path, option):
    """The probe: --checkpoint /dev/zero read 24 GB; a FIFO as --checkpoint, --prompts, --labels or --perturbation
    hung. Variant: each option both as a FIFO and as /dev/zero."""
    people = noise_people(tmp_path / "people", n_people=2, n_photos=1)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        model = ["--model", "ViT-B-32"] if option == "--checkpoint" else ["--model", "world"]
        proc = run_idia("attack", *model, option, path, "--people", people, "--out", tmp_path / "o", "-q")
        assert_one_line_error(proc, str(path), "not a regular file")


def test_csv_text_cells_that_a_spreadsheet_would_run_are_made_inert():
    """OWASP's list: = + - @ tab and carriage return at the start; numbers and other text untouched."""
    for cell in ("=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert csv_text(cell) == "'" + cell
    assert csv_text("Anna Smith") == "Anna Smith" and csv_text(-1.5) == -1.5 and csv_text("a=b") == "a=b"
