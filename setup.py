from skbuild import setup

setup(
    packages=["ioloop_c"],
    package_data={"ioloop_c": ["py.typed", "*.pyi"]},
    cmake_install_dir=".",
)
