"""The package as users install it: one import name, every module in the wheel, a command line that starts at
once."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"idia": "idia", "attack": "idia/attack", "defense": "idia/defense", "compliance": "idia/compliance",
           "world": "idia/world", "templates": "idia/templates"}
HEAVY = ("torch", "open_clip", "weasyprint", "transformers", "ray")


def _python(code: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter that does not put the current folder on sys.path (-P), as an installed
    idia runs."""
    return subprocess.run([sys.executable, "-P", "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", ["attack", "defense", "compliance", "world", "idia_templates"])
def test_the_folders_are_not_importable_under_their_own_names(name):
    proc = _python(f"import {name}")
    assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr


def test_every_module_of_the_tree_imports_under_idia():
    import importlib
    for module in sorted(_tree_modules()):
        if module.endswith(".py") and not module.endswith("__main__.py"):  # __main__ runs the command line
            name = module[:-3].replace("/", ".").removesuffix(".__init__")
            assert importlib.import_module(name).__name__ == name


def test_loading_the_console_script_imports_no_heavy_library():
    proc = _python("import sys\n"
                   "from importlib.metadata import entry_points\n"
                   "[e for e in entry_points(group='console_scripts') if e.name == 'idia'][0].load()\n"
                   f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_help_runs_without_heavy_libraries():
    proc = _python("import sys\n"
                   "from idia.compliance.cli import main\n"
                   "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
                   f"print('LOADED', ' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    assert proc.returncode == 0, proc.stderr
    assert "Commands:" in proc.stdout and proc.stdout.strip().endswith("LOADED")


def _tree_modules() -> set[str]:
    """Every file the package folders hold (sources and data), as their paths inside the wheel."""
    tracked = subprocess.run(["git", "ls-files", *FOLDERS], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    return {FOLDERS[f.split("/", 1)[0]] + "/" + f.split("/", 1)[1] for f in tracked}


def _copy_of_the_checkout(dest: Path) -> Path:
    """The files git would commit (tracked, and new ones it does not ignore), copied: setuptools builds inside the
    source folder, and a test must not leave a build/ folder in the checkout."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


@pytest.mark.slow
def test_the_wheel_holds_every_module_of_the_tree_under_one_top_level_name(tmp_path):
    source = _copy_of_the_checkout(tmp_path / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("idia-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"idia"}
    missing = sorted(_tree_modules() - names)
    assert missing == [], f"in the tree but not in the wheel: {missing[:5]}"
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["idia"]
