"""Puts the package (clients/python) on the path: the tests run from any directory."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
