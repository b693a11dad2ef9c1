"""The package layout: each of the project's folders installs under one import name, `idia`.

setuptools cannot find packages whose import names differ from their folders, so they are found here, folder by
folder; nothing is listed by hand, and a new subpackage (or data folder) is in the wheel without an edit.
Everything else is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

FOLDERS = {"idia": "idia", "idia.attack": "attack", "idia.defense": "defense", "idia.compliance": "compliance",
           "idia.world": "world", "idia.templates": "templates"}

packages = []
for name, folder in FOLDERS.items():
    packages += [name] + [f"{name}.{sub}" for sub in find_namespace_packages(folder, exclude=["*__pycache__*"])]

setup(packages=packages, package_dir=FOLDERS)
