"""Implementation modules of pykernels.functional, one per op family; the
public names are re-exported by pykernels/functional.py."""
