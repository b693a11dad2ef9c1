"""Files: an output folder held by one run at a time."""

import os

import pytest
from idia_testkit import assert_one_line_error, run_idia

from idia.errors import InputError
from idia.io import output_lock


def test_an_output_folder_in_use_is_refused_with_the_holders_pid(tmp_path):
    with output_lock(tmp_path / "out"):
        with pytest.raises(InputError, match=rf"is in use by another idia run \(pid {os.getpid()}\)"):
            with output_lock(tmp_path / "out"):
                pass
        proc = run_idia("attack", "--model", "world", "--people", tmp_path / "people", "--out", tmp_path / "out", "-q")
        assert_one_line_error(proc, f"{tmp_path / 'out'}: is in use by another idia run (pid {os.getpid()})")
    with output_lock(tmp_path / "out"):  # released: usable again
        pass
