"""Build of the one compiled part: the receiver's express lane (C, optional), and
the man pages' place.

Everything else is in pyproject.toml. Without a C compiler the install still
succeeds (`optional=True`) and `netconsole listen` runs all-Python, slower.
"""

from pathlib import Path

from setuptools import Extension, setup

# The man pages, generated from the click definitions (python -m netconsole.cli._man man;
# tests/unit/test_man_pages.py keeps them current), installed where man finds them:
# <prefix>/share/man/man1, the prefix of a virtualenv included.
MAN_PAGES = sorted(str(p) for p in Path("man").glob("*.1"))

setup(
    data_files=[("share/man/man1", MAN_PAGES)],
    ext_modules=[
        Extension(
            "netconsole.collector._lane",
            ["src/netconsole/collector/_lane.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers",
                                "-Wno-cast-function-type"],
            optional=True,
        )
    ]
)
