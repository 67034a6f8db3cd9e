#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: corokey authors
# MIT License (see LICENSE at the root of this collection)

DOCUMENTATION = r"""
---
module: authkey_info
short_description: What corokey knows about a node's Corosync key and its use
version_added: "0.1.0"
description:
  - Reads, never writes. Reports what C(corokey check) and C(corokey doctor) know about
    the node, from corosync.conf, the key file (read without following links), the
    running corosync (through C(corosync-cmapctl) and C(corosync-quorumtool)) and its log.
  - With O(profile=pacemaker), Pacemaker's part on the node (cluster or remote node), its
    version, C(PCMK_authkey_location), maintenance-mode and, on a cluster node, the nodes
    of the CIB with their states; its doctor is C(corokey doctor --profile pacemaker)'s.
  - The key's fingerprint, size, owner, mode and every finding of corokey's checks;
    where corosync reads its key and which crypto it uses; corosync's version, whether it
    runs, its members and ring id, whether it can reload its key online (3.1 and later)
    and how its last configuration reload went; and the recent lines of its log that
    show nodes with another key, mapped to node names.
author:
  - corokey maintainers (@corokey)
options:
  conf_path:
    description:
      - The corosync configuration to read. By default the file this node's corosync reads
        (C(-c) in C(COROSYNC_OPTIONS) for 3.x, C(COROSYNC_MAIN_CONFIG_FILE) for 2.x, from
        C(/etc/default/corosync) or C(/etc/sysconfig/corosync)), else
        C(/etc/corosync/corosync.conf); read as that corosync generation reads it.
    type: path
  path:
    description:
      - The key file to check. For the C(corosync) profile it defaults to where corosync
        reads its key (C(totem.keyfile), else C(/etc/corosync/authkey)); for the others, to
        the profile's file (C(/etc/pacemaker/authkey) or C(PCMK_authkey_location) as Pacemaker
        reads it, C(/etc/cluster/fence_xvm.key)).
    type: path
  profile:
    description: Which kind of secret the key is (sizes, owner and mode the checks expect).
    type: str
    default: corosync
    choices: [corosync, pacemaker, fence-xvm]
extends_documentation_fragment:
  - action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module never changes anything.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - Python 3.9 or later on the node.
seealso:
  - module: corokey.corosync.authkey
"""

EXAMPLES = r"""
- name: Audit the key of every node
  corokey.corosync.authkey_info:
  register: info

- name: Fail where a node's key has errors
  ansible.builtin.assert:
    that: info.key.status != 'error'
    fail_msg: "{{ info.key.findings | map(attribute='message') | join('; ') }}"
"""

RETURN = r"""
key:
  description: The key file and what corokey's checks say about it (never its bytes).
  returned: always
  type: dict
  contains:
    path:
      description: The file checked.
      type: str
      sample: /etc/corosync/authkey
    source:
      description: Where corosync takes its key, C(file) or C(inline) (totem.key).
      type: str
      sample: file
    exists:
      description: Whether something is at the path.
      type: bool
    fingerprint:
      description: C(SHA256:) fingerprint of the bytes corosync uses; null when unreadable.
      type: str
    size:
      description: Size in bytes.
      type: int
    owner:
      description: Owner and group, C(user:group).
      type: str
    mode:
      description: Permission bits, as four octal digits.
      type: str
    status:
      description: C(ok), C(warning) or C(error), the worst finding.
      type: str
    findings:
      description: Each finding of corokey's checks (severity, reference, message, fix).
      type: list
      elements: dict
    staged_fingerprint:
      description: Fingerprint of a staged copy waiting beside the key, else null.
      type: str
crypto:
  description: The crypto corosync uses, as this node's corosync generation decides it from corosync.conf (2.x encrypts unless C(secauth=off)).
  returned: when corosync.conf could be read
  type: dict
  contains:
    cipher:
      description: crypto_cipher.
      type: str
      sample: aes256
    hash:
      description: crypto_hash.
      type: str
      sample: sha256
    enabled:
      description: Whether packets are authenticated (a key is used at all).
      type: bool
corosync:
  description: The corosync of this node.
  returned: always
  type: dict
  contains:
    version:
      description: C(corosync -v)'s version, null when corosync is not installed.
      type: str
      sample: 3.1.7
    running:
      description: Whether corosync answers.
      type: bool
    this_node:
      description: This node's nodeid, from the running corosync.
      type: int
    conf_node:
      description:
        - The nodeid of the nodelist entry that is this node, found as corosync finds it
          (an entry's ring addresses, names resolved, among this host's addresses); null
          when none or several match. For a corosync that is not running.
      type: int
    members:
      description: Node ids of the joined members.
      type: list
      elements: int
    quorate:
      description: Whether this partition is quorate.
      type: bool
    ring_id:
      description: The ring id.
      type: str
    online_reload:
      description: Whether this corosync reloads its key with C(corosync-cfgtool -R) (3.1 and later).
      type: bool
    reload_status:
      description: cmap C(config.reload_status) (C(1) is success), null before any reload.
      type: str
    reload_error_message:
      description: cmap C(config.reload_error_message) of the last reload, if any.
      type: str
cluster_name:
  description: totem.cluster_name.
  returned: when corosync.conf could be read
  type: str
nodes:
  description: The nodelist (name, nodeid, addresses).
  returned: when corosync.conf could be read
  type: list
  elements: dict
mismatches:
  description: Nodes whose packets this node could not decrypt since corosync last started.
  returned: always
  type: list
  elements: dict
  contains:
    node:
      description: The node's name (its address when the nodelist does not know it).
      type: str
    address:
      description: The address the packets came from.
      type: str
    count:
      description: How many log lines say so.
      type: int
    last_line:
      description: The newest such line.
      type: str
digest_mismatch_lines:
  description: How many "Digest does not match" lines corosync logged since it started.
  returned: always
  type: int
log_source:
  description: Where the log was read (a file, C(journal)) or null.
  returned: always
  type: str
doctor:
  description:
    - C(corokey doctor)'s conclusion, status and findings; for O(profile=pacemaker),
      C(corokey doctor --profile pacemaker)'s, with C(handshake_failures_by_peer) (failed
      Pacemaker Remote TLS handshakes in Pacemaker's log, counted per peer).
  returned: always
  type: dict
pacemaker:
  description:
    - Pacemaker on this node, for O(profile=pacemaker) (the C(corokey.corosync.authkey) and
      C(corokey.corosync.rotate) roles decide from it).
  returned: when O(profile=pacemaker)
  type: dict
  contains:
    role:
      description:
        - V(cluster) where pacemakerd is installed (pacemaker-controld reads the key as user
          hacluster), V(remote) where only pacemaker-remoted is (it reads the key as root),
          null where neither is.
      type: str
      sample: cluster
    version:
      description: The version pacemakerd or pacemaker-remoted reports, null when unknown.
      type: str
      sample: 2.1.5
    reads_once:
      description:
        - Whether this Pacemaker reads its key once per process (3.0.2 and later), so that a
          changed key needs the daemons restarted; before 3.0.2 it is read at each TLS
          handshake through a cache of 60 seconds.
      type: bool
    location:
      description: C(PCMK_authkey_location) from C(/etc/default/pacemaker) or C(/etc/sysconfig/pacemaker), null when unset.
      type: str
    running:
      description: Whether the cluster's Pacemaker answers here (C(cibadmin -Q)); false on a remote node.
      type: bool
    maintenance:
      description: The cluster option maintenance-mode, on a cluster node where Pacemaker runs; else null.
      type: bool
    nodes:
      description:
        - On a cluster node where Pacemaker runs, every node of the CIB that needs the key,
          as C(corokey nodes --profile pacemaker) lists them, else null. Each has C(name)
          (Pacemaker's node name), C(kind) (C(cluster), C(remote), C(guest), C(bundle)),
          C(address) and C(port) (where Pacemaker connects), C(resource), C(state) (C(online),
          C(offline), C(unknown), from C(crm_mon)) and C(stopped) (its resource's target-role
          is Stopped).
      type: list
      elements: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.corokey.corosync.plugins.module_utils.python_floor import python_too_old

if python_too_old() is None:  # the library does not parse on older Pythons
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.checks import (
        ERROR,
        Finding,
        check_key,
    )
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.corosync_conf import (
        load_local_conf,
    )
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.doctor import diagnose
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.errors import CorokeyError
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.key import DEFAULT_KEY_PATH
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.logscan import (
        journal_lines,
        read_since_last_start,
        read_tail,
        scan,
    )
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey import pacemaker_doctor
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.profiles import PROFILES
    from ansible_collections.corokey.corosync.plugins.module_utils._corokey.runtime import (
        cmap_values,
        live_state,
        local_runner,
    )
    from ansible_collections.corokey.corosync.plugins.module_utils.keyfile import (
        ONLINE_RELOAD_SINCE,
        describe,
        error_message,
        profile_key_path,
        read_if_present,
        staged_path,
        version_tuple,
    )
    from ansible_collections.corokey.corosync.plugins.module_utils import pacemaker_node


def local_addresses():
    """This host's addresses (``ip -o addr``), as corosync compares nodelist entries with them."""
    status, text = local_runner(["ip", "-o", "addr", "show"])
    if status != 0:
        return set()
    found = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[2] in ("inet", "inet6"):
            found.add(fields[3].split("/", 1)[0])
    return found


def resolved(address):
    import socket

    try:
        return {info[4][0] for info in socket.getaddrinfo(address, None)}
    except (socket.gaierror, UnicodeError):
        return set()


def conf_node(conf):
    """corosync's own entry in the nodelist: the one with a local ring address."""
    if conf is None:
        return None
    mine = local_addresses()
    matches = [
        node.nodeid
        for node in conf.nodes()
        if any(resolved(address) & mine for address in node.addresses)
    ]
    return matches[0] if len(matches) == 1 else None


def corosync_version():
    status, text = local_runner(["corosync", "-v"])
    if status != 0 or "version '" not in text:
        return None
    return text.split("version '", 1)[1].split("'", 1)[0]


def key_facts(path, source, profile):
    report = check_key(path, profile)
    facts = {
        "path": path,
        "source": source,
        "exists": os.path.lexists(path),
        "fingerprint": report.fingerprint,
        "size": report.size,
        "owner": None,
        "mode": None,
        "status": report.status,
        "findings": [finding.to_json() for finding in report.findings],
        "staged_fingerprint": None,
    }
    try:
        described = describe(read_if_present(path))
    except CorokeyError:
        described = None  # a link or another non-regular file: the findings say so
    if described is not None:
        facts.update(owner=described["owner"], mode=described["mode"])
    try:
        staged = describe(read_if_present(staged_path(path)))
    except CorokeyError:
        staged = None
    if staged is not None:
        facts["staged_fingerprint"] = staged["fingerprint"]
    return facts


def log_lines(conf):
    logfile = conf.logfile() if conf is not None else None
    if logfile and os.path.exists(logfile):
        try:
            return read_tail(logfile), logfile
        except OSError:
            pass
    lines = journal_lines()
    return lines, ("journal" if lines is not None else None)


def mismatches(conf, lines):
    events = scan(read_since_last_start(lines or []))
    found = {}
    for event in events:
        if event.kind != "undecryptable" or not event.address:
            continue
        node = conf.node_for_address(event.address) if conf is not None else None
        entry = found.setdefault(
            event.address,
            {"node": node.label if node else event.address, "address": event.address, "count": 0},
        )
        entry["count"] += 1
        entry["last_line"] = event.line
    digest_lines = sum(1 for event in events if event.kind == "digest-mismatch")
    return [found[address] for address in sorted(found)], digest_lines


def gather(params):
    profile = PROFILES[params["profile"]]
    conf_path = params["conf_path"]
    result = {"changed": False}
    conf_error = None
    try:
        conf = load_local_conf(conf_path)
    except CorokeyError as exc:  # ConfParseError too
        conf, conf_error = None, exc
    source, conf_key_path = ("file", None) if conf is None else conf.key_source()
    if profile.corosync:
        path = params["path"] or conf_key_path or DEFAULT_KEY_PATH
    else:  # corosync.conf names corosync's key, not this profile's
        source, path = "file", params["path"] or profile_key_path(profile)
    if conf is not None:
        cipher, hash_ = conf.crypto()
        result["crypto"] = {"cipher": cipher, "hash": hash_, "enabled": conf.crypto_enabled()}
        result["cluster_name"] = conf.value("totem.cluster_name")
        result["nodes"] = [
            {"name": node.name, "nodeid": node.nodeid, "addresses": list(node.addresses)}
            for node in conf.nodes()
        ]
    result["key"] = key_facts(path, source, profile)
    live = live_state()
    version = live.version or corosync_version()
    reload_values = (cmap_values("config.reload", local_runner) or {}) if live.running else {}
    result["corosync"] = {
        "version": version,
        "running": live.running,
        "this_node": live.this_node,
        "conf_node": conf_node(conf),
        "members": sorted(live.members),
        "quorate": live.quorate,
        "ring_id": live.ring_id,
        "online_reload": version_tuple(version) >= ONLINE_RELOAD_SINCE,
        "reload_status": reload_values.get("config.reload_status"),
        "reload_error_message": reload_values.get("config.reload_error_message") or None,
    }
    lines, result["log_source"] = log_lines(conf)
    result["mismatches"], result["digest_mismatch_lines"] = mismatches(conf, lines)
    if profile.name == "pacemaker":
        # Pacemaker's own view: a remote node has no corosync, and its doctor is corokey
        # doctor --profile pacemaker's (handshake failures per peer, the key's readers).
        result["pacemaker"] = pacemaker_node.facts()
        diagnosis = pacemaker_doctor.diagnose()
        result["doctor"] = {
            "status": diagnosis.status,
            "findings": [finding.to_json() for finding in diagnosis.findings],
            "odd_nodes": [],
            "handshake_failures_by_peer": diagnosis.peers,
        }
        return result
    if conf_error is not None:
        finding = Finding(ERROR, conf_error.reference, conf_error.message, conf_error.hint)
        result["doctor"] = {"status": ERROR, "findings": [finding.to_json()], "odd_nodes": []}
        return result
    diagnosis = diagnose(conf_path, log_lines=lines)
    result["doctor"] = {
        "status": diagnosis.status,
        "findings": [finding.to_json() for finding in diagnosis.findings],
        "odd_nodes": diagnosis.odd_nodes,
    }
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            conf_path=dict(type="path"),
            path=dict(type="path"),
            profile=dict(type="str", default="corosync", choices=["corosync", "fence-xvm", "pacemaker"]),
        ),
        supports_check_mode=True,
    )
    too_old = python_too_old()
    if too_old is not None:
        module.fail_json(msg=too_old, reference="python-too-old")
    try:
        result = gather(module.params)
    except CorokeyError as exc:
        module.fail_json(msg=error_message(exc), reference=exc.reference)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
