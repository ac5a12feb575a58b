"""Build of the one compiled part: the receiver's express lane (C, optional).

Everything else is in pyproject.toml. Without a C compiler the install still
succeeds (`optional=True`) and `netconsole listen` runs all-Python, slower.
"""

from setuptools import Extension, setup

setup(
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
