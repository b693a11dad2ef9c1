"""Every failure a command meets ends in one line: file-system errors (no permission, disk full, a file where a
folder should be) and SIGTERM as well as bad input; and the synthetic world's model is a model like any other."""

import errno
import os
import signal

import click
import pytest
from click.testing import CliRunner
from idia_testkit import assert_one_line_error, run_idia

from idia.attack.record.scores import stage_scores
from idia.compliance.commands.common import Terminated, catch_sigterm, friendly_errors


def _command(action):
    @click.command()
    @friendly_errors
    def cmd():
        action()
    return cmd


@pytest.mark.parametrize("error, needle", [
    (OSError(errno.EFBIG, "File too large", "/out/scores.csv"), "/out/scores.csv: File too large"),
    (OSError(errno.ENOSPC, "No space left on device", "/out/x"), "/out/x: No space left on device"),
    (PermissionError(errno.EACCES, "Permission denied", "/cache/text"), "/cache/text: Permission denied"),
    (OSError(errno.EROFS, "Read-only file system", "/out/.results.json.tmp"), "Read-only file system")])
def test_file_system_failures_are_one_line(error, needle):
    """The probe: a read-only --out or --cache-dir and a full disk (ulimit -f) ended in tracebacks."""
    def fail():
        raise error
    result = CliRunner().invoke(_command(fail), [])
    assert_one_line_error(type("P", (), {"returncode": result.exit_code, "stderr": result.output})(), needle)


def test_a_file_where_the_output_folder_should_be_is_one_line(tmp_path):
    """Variant: a real command, its --out under a regular file."""
    (tmp_path / "file").write_text("x")
    proc = run_idia("world", "photos", "--out", tmp_path / "file" / "photos", "-q")
    assert_one_line_error(proc, "Not a directory")


def test_sigterm_ends_a_command_with_one_line_and_status_143():
    """The probe: SIGTERM exited silently."""
    old = signal.getsignal(signal.SIGTERM)
    try:
        catch_sigterm()
        result = CliRunner().invoke(_command(lambda: os.kill(os.getpid(), signal.SIGTERM)), [])
    finally:
        signal.signal(signal.SIGTERM, old)
    assert result.exit_code == 143
    assert result.output.strip() == "idia: terminated (SIGTERM); finished steps are on disk and a rerun resumes"


def test_sigterm_while_a_table_is_written_leaves_no_partial_file(tmp_path):
    """Variant: SIGTERM between rows of scores.csv: the temporary file is removed, nothing else appears."""
    def rows():
        yield ("audit", "A B", "a.png", "0" * 64, 0, "{0}", "A B", "1", "1", 1, "0")
        os.kill(os.getpid(), signal.SIGTERM)
        yield ("audit", "A B", "b.png", "0" * 64, 0, "{0}", "A B", "1", "1", 1, "0")
    old = signal.getsignal(signal.SIGTERM)
    try:
        catch_sigterm()
        with pytest.raises(Terminated):
            stage_scores(rows(), 2, tmp_path)
    finally:
        signal.signal(signal.SIGTERM, old)
    assert list(tmp_path.iterdir()) == []


def test_idia_convert_accepts_world(tmp_path):
    """The probe: `idia convert world` was refused; 'world' names the shipped model everywhere else."""
    proc = run_idia("convert", "world", "--out", tmp_path / "hub", "-q")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "hub" / "open_clip_config.json").is_file()
