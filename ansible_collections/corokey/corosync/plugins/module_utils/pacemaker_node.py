# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)
"""Pacemaker on the node a module runs on: what the roles need for the pacemaker profile.

A cluster node runs pacemakerd (its pacemaker-controld connects to the remote nodes, as
user hacluster); a remote node runs pacemaker-remoted only (as root).  On a cluster node
where Pacemaker runs, the CIB (``cibadmin -Q``) says which remote and guest nodes the
cluster has, and ``crm_mon --output-as=xml`` which are online; both are read with
corokey's own parser (module_utils/_corokey/cib.py), as ``corokey nodes --profile
pacemaker`` reads them.  The commands are those corokey's node scripts run over ssh.
"""

from ansible_collections.corokey.corosync.plugins.module_utils._corokey.cib import (
    CibError,
    nodes_from_cib,
    states_from_crm_mon,
    with_states,
)
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.pacemaker import (
    ENVIRONMENT_FILES,
    environment_location,
)
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.pacemaker_access import (
    CLUSTER,
    REMOTE,
    local_role,
)
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.pacemaker_window import (
    MAINTENANCE_ARGV,
    reads_once,
)
from ansible_collections.corokey.corosync.plugins.module_utils._corokey.runtime import local_runner

#: Where Debian puts the daemons (pacemaker-remoted may live in /usr/local/sbin on a
#: remote node built by hand); the module's PATH need not name these directories.
SBIN = ("/usr/sbin", "/usr/local/sbin")


def _program(name):
    import os

    for directory in SBIN:
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    return name


def version(role):
    """``pacemakerd --version`` (cluster node) or ``pacemaker-remoted --version``: 2.1.5."""
    daemon = "pacemakerd" if role == CLUSTER else "pacemaker-remoted"
    status, text = local_runner([_program(daemon), "--version"])
    if status != 0:
        return None
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "Pacemaker" and words[1][:1].isdigit():
            return words[1].split("-", 1)[0]
    return None


def maintenance():
    """The cluster's maintenance-mode (True, False), None when crm_attribute cannot say."""
    status, text = local_runner([_program(MAINTENANCE_ARGV[0])] + list(MAINTENANCE_ARGV[1:]) + ["--query", "--quiet"])
    if status != 0:
        # crm_attribute exits 105 (no such attribute) when the option was never set.
        return False if status == 105 else None
    return text.strip() == "true"


def set_maintenance(run_command, on):
    """maintenance-mode on or off; ``run_command`` is AnsibleModule.run_command. The error, or None."""
    argv = [_program(MAINTENANCE_ARGV[0])] + list(MAINTENANCE_ARGV[1:]) + ["--update", "true" if on else "false"]
    status, out, err = run_command(argv)
    if status != 0:
        return "crm_attribute (maintenance-mode %s) failed (exit %d): %s" % (
            "true" if on else "false", status, (err or out).strip())
    return None


def node_states():
    """crm_mon's node name -> online/offline; {} when crm_mon cannot say."""
    status, text = local_runner([_program("crm_mon"), "-1", "--output-as=xml"])
    if status != 0 or not text:
        return {}
    try:
        return states_from_crm_mon(text)
    except CibError:
        return {}


def cib_nodes():
    """The nodes of this cluster node's CIB with their states (dicts), None when Pacemaker
    does not answer here."""
    status, text = local_runner([_program("cibadmin"), "-Q"])
    if status != 0 or not text:
        return None
    try:
        nodes = with_states(nodes_from_cib(text), node_states())
    except CibError:
        return None
    return [
        {
            "name": node.name,
            "kind": node.kind,
            "address": node.address,
            "port": node.port,
            "resource": node.resource,
            "state": node.state,
            "stopped": node.stopped,
        }
        for node in nodes
    ]


def facts():
    """What the ``pacemaker`` result of authkey_info says of this node."""
    role = local_role()
    found = {
        "role": role,
        "version": None,
        "reads_once": False,
        "location": environment_location(ENVIRONMENT_FILES),
        "running": False,
        "maintenance": None,
        "nodes": None,
    }
    if role not in (CLUSTER, REMOTE):
        return found
    found["version"] = version(role)
    found["reads_once"] = reads_once(found["version"])
    if role == CLUSTER:
        found["nodes"] = cib_nodes()
        found["running"] = found["nodes"] is not None
        if found["running"]:
            found["maintenance"] = maintenance()
    return found
