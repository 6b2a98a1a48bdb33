"""Helpers shared by the tests (fixtures live in tests/conftest.py): images and course pickles written in
tmp_path, the real Hydra configs composed and run in-process or as a user would, crafted files."""
