"""Every exit status of ``corokey`` and ``corosync-keygen``, in one table.

No imports: ``corosync-keygen`` loads this on its start-up path.
docs/errors.md and the man pages list the same values.
"""

# ``corokey``
EXIT_OK = 0
EXIT_FINDINGS = 1  # check/doctor: warnings; compare/verify: keys differ; push: nodes skipped
EXIT_ERROR = 2  # the request could not be carried out (or check/doctor found errors)
EXIT_INTERNAL = 70  # a bug in corokey (EX_SOFTWARE, sysexits.h)
EXIT_INTERRUPTED = 130  # SIGINT, as a shell reports 128 + 2

# ``corosync-keygen``: corosync 3.1 tools/corosync-keygen.c exits through err(3)
# with 1 for a bad option or size and a random source that cannot be opened or
# read, then one status per step of writing the key: 2 open/create, 3 fchmod,
# 4 write, 5 close (the last step before the key is in place; our rename).
KEYGEN_OK = 0
KEYGEN_USAGE = 1
KEYGEN_BY_STAGE = {"create": 2, "mode": 3, "write": 4, "commit": 5, "read": 2}
KEYGEN_INTERRUPTED = 130
KEYGEN_BROKEN_PIPE = 1  # stdout closed early: the C tool's printf fails silently
