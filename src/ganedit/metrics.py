"""Moved to `ganedit.eval.metrics`; this alias is kept for one release."""

import sys

from ganedit.eval import metrics as _moved

# The old name is the new module itself (not a copy): private names and monkeypatching keep working.
sys.modules[__name__] = _moved
