#!/usr/bin/python3
"""without_scipy.py: runs a Python script as if scipy were not installed.

usage: without_scipy.py SCRIPT [ARGS...]

An import hook refuses every module named scipy or scipy.*, so a script
that still needs scipy (directly, or through pickle's look-up of a class's
module) fails here as it would on a machine without python3-scipy.
"""
import importlib.abc
import runpy
import sys


class HideScipy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "scipy" or name.startswith("scipy."):
            raise ImportError(f"{name} is hidden by without_scipy.py")
        return None


sys.meta_path.insert(0, HideScipy())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
