# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""The managed node's Python floor, checked before the corokey library is imported.

This file must parse on every Python an ansible-core of the supported range runs
modules under (2.7 and 3.5 with ansible-core 2.14): nothing newer than that here.
"""

import sys

#: The corokey library's floor (pyproject's requires-python): older Pythons cannot parse
#: it, so each module checks this before it imports the library.
PYTHON_FLOOR = (3, 9)


def python_too_old():
    """A one-line failure message when this Python is older than the floor, else None."""
    if tuple(sys.version_info[:2]) >= PYTHON_FLOOR:
        return None
    return (
        "corokey.corosync needs Python %d.%d or later on the node, and %s is Python %d.%d; "
        "set ansible_python_interpreter to a newer python3 for this host"
        % (PYTHON_FLOOR[0], PYTHON_FLOOR[1], sys.executable, sys.version_info[0], sys.version_info[1])
    )
