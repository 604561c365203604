"""The C extensions (streammetric/_kernels.c and the loops it includes once per instruction set,
_kernels_loops.h; streammetric/_text.c, the JSON writer, and its powers of ten, _text_tables.h;
streammetric/_guard.c, the files mapped in memory, named when one changes under its map: plain C,
no NumPy headers); the rest of the package's configuration is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "streammetric._kernels",
            ["streammetric/_kernels.c"],
            depends=["streammetric/_kernels_loops.h", "streammetric/_math_tables.h"],
            # -Wno-psabi: vectors only cross always-inlined calls, never an ABI boundary;
            # -ffp-contract=off: no fused multiply-adds, float arithmetic in the order written
            # (a literal list: scripts/kernel_ab.py reads it)
            extra_compile_args=[
                "-O3",
                "-fno-math-errno",
                "-ffp-contract=off",
                "-Wall",
                "-Wno-psabi",
            ],
        ),
        Extension(
            "streammetric._guard",
            ["streammetric/_guard.c"],
            extra_compile_args=["-O2", "-Wall"],
        ),
        Extension(
            "streammetric._text",
            ["streammetric/_text.c"],
            depends=["streammetric/_text_tables.h"],
            extra_compile_args=[  # _kernels' flags
                "-O3",
                "-fno-math-errno",
                "-ffp-contract=off",
                "-Wall",
                "-Wno-psabi",
            ],
        ),
    ]
)
