"""The C extension (streammetric/_kernels.c: plain C, no NumPy headers); the rest of the
package's configuration is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "streammetric._kernels",
            ["streammetric/_kernels.c"],
            # -Wno-psabi: 32-byte vectors only cross always-inlined calls, never an ABI boundary
            extra_compile_args=["-O3", "-fno-math-errno", "-Wall", "-Wno-psabi"],
        )
    ]
)
