"""Build step: the wheel carries the top-level `templates/` as `bot/templates/` package data.

`templates/` stays at the top of the repository (the source); an editable install reads it
there, an installed wheel from the copy (bot/render.py looks in both). Everything else about
the package is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithTemplates(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's templates/
            return
        target = Path(self.build_lib) / "bot" / "templates"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(HERE / "templates", target)


setup(cmdclass={"build_py": BuildWithTemplates})
