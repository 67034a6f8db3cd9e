"""The nodes of the ``pacemaker`` profile: asked of a running cluster node, named for ssh.

Pacemaker Remote's key must be the same on every cluster node, remote node and guest
node (:mod:`corokey.cib` reads which those are).  A cluster node answers with its CIB
(``cibadmin -Q``) and the node states (``crm_mon --output-as=xml``); a saved CIB serves
too.  Pacemaker names a node by its uname, resource id or ``remote-node``; ssh reaches it
by that name (as ssh_config and corosync's nodelist name nodes), unless the admin maps it
(``--ssh-name NAME=HOST``, e.g. to the address Pacemaker connects to).  A bundle's
replicas are not reached: their key is the host's file, bind-mounted into the container.
"""

from typing import Dict, List, Optional, Sequence, Tuple

from corokey.cib import (
    BUNDLE,
    CibError,
    PacemakerNode,
    nodes_from_cib,
    states_from_crm_mon,
)
from corokey.cib import with_states as _with_states
from corokey.errors import CorokeyError, UsageError
from corokey.nodekey import NodeFailure
from corokey.nodescripts import FAILURES, MARKER, TEXT_PREFIX, Answer, cib_script, parse_answer
from corokey.remote import Session, Ssh, validate_node


class PacemakerNodesError(CorokeyError):
    """No cluster node answered with a CIB, or the CIB names no node."""

    reference = "pacemaker-nodes"


class Member:
    """A node of the profile: Pacemaker's record of it and the name ssh reaches it by."""

    def __init__(self, node: "PacemakerNode", ssh_name: str) -> None:
        self.node = node
        self.ssh_name = ssh_name

    @property
    def reached(self) -> bool:
        """corokey reaches it over ssh (a bundle replica holds the host's key instead)."""
        return self.node.kind != BUNDLE

    def to_json(self) -> "Dict[str, object]":
        return {**self.node.to_json(), "ssh": self.ssh_name if self.reached else None}


class Topology:
    """Every node of a Pacemaker cluster that holds Pacemaker Remote's key."""

    def __init__(self, source: str, members: "List[Member]", states_known: bool) -> None:
        #: the node that answered, or the CIB file read
        self.source = source
        self.members = members
        #: crm_mon answered: the states are Pacemaker's
        self.states_known = states_known

    def targets(self, leave_out: "Sequence[str]" = ()) -> "List[str]":
        """The ssh names of the nodes corokey reaches, each once, in CIB order."""
        left = set(leave_out)
        names = [
            m.ssh_name
            for m in self.members
            if m.reached and m.node.name not in left and m.ssh_name not in left
        ]
        return list(dict.fromkeys(names))

    def by_ssh_name(self) -> "Dict[str, Member]":
        return {m.ssh_name: m for m in self.members if m.reached}

    def to_json(self) -> "Dict[str, object]":
        return {
            "source": self.source,
            "states_known": self.states_known,
            "nodes": [m.to_json() for m in self.members],
        }


def parse_ssh_names(values: "Sequence[str]") -> "Dict[str, str]":
    """``NAME=HOST`` options as a map from Pacemaker's node name to ssh's."""
    names: Dict[str, str] = {}
    for value in values:
        name, sep, host = value.partition("=")
        if not sep or not name or not host:
            raise UsageError(
                f"--ssh-name {value!r} is not NAME=HOST",
                hint="map a Pacemaker node name to the name ssh reaches it by, "
                "e.g. --ssh-name remote1=rn1.example.com",
                reference="usage",
            )
        names[name] = validate_node(host)
    return names


def _sections(lines: "List[bytes]") -> "Tuple[Dict[str, str], List[Answer]]":
    """The text between ``NAME-begin`` and ``NAME-end`` answers, by NAME; every answer."""
    sections: Dict[str, List[str]] = {}
    current: Optional[List[str]] = None
    answers: List[Answer] = []
    for raw in lines:
        line = raw.decode("utf-8", errors="replace")
        answer = parse_answer(line)
        if answer is not None:
            answers.append(answer)
            if answer.name.endswith("-begin"):
                current = sections.setdefault(answer.name[: -len("-begin")], [])
            elif answer.name.endswith("-end"):
                current = None
        elif current is not None and line.startswith(TEXT_PREFIX):
            current.append(line[len(TEXT_PREFIX) :].rstrip("\n"))
    return {name: "\n".join(text) for name, text in sections.items()}, answers


def run_script(ssh: "Ssh", node: str, script: str) -> "Tuple[Dict[str, str], List[Answer]]":
    """Run a script of :mod:`corokey.nodescripts` that reads no input on ``node``: its
    framed sections and its answers. Raises NodeFailure (unreachable, or a named failure)."""
    session = Session(ssh, node, script, MARKER.encode())
    session.end_input()
    lines: List[bytes] = []
    while True:
        line = session.line()
        if line is None:
            break
        lines.append(line)
    session.close()
    if session.unreachable:
        raise NodeFailure.transport(node, session)
    sections, answers = _sections(lines)
    for answer in answers:
        if answer.name in FAILURES:
            raise NodeFailure.named(node, answer)
    return sections, answers


def ask_cib(ssh: "Ssh", node: str) -> "Tuple[str, Optional[str]]":
    """The CIB and crm_mon's XML (None when crm_mon failed) of ``node``. Raises NodeFailure."""
    sections, answers = run_script(ssh, node, cib_script())
    if "cib" not in sections or not any(a.name == "cib-end" for a in answers):
        raise NodeFailure.lost(node, "cibadmin -Q")
    return sections["cib"], sections.get("crm-mon")


def topology_from_texts(
    source: str, cib: str, crm_mon: "Optional[str]", ssh_names: "Dict[str, str]"
) -> "Topology":
    """The topology a CIB (and crm_mon's output, when there is one) describes."""
    try:
        nodes = nodes_from_cib(cib)
        if crm_mon is not None:
            nodes = _with_states(nodes, states_from_crm_mon(crm_mon))
    except CibError as exc:
        raise PacemakerNodesError(
            f"{source}: {exc}",
            hint="give a CIB as cibadmin -Q prints it (--cib FILE), or ask a cluster node "
            "(--cib-from NODE)",
        ) from None
    if not nodes:
        raise PacemakerNodesError(
            f"the CIB from {source} names no node",
            hint="name the nodes with --nodes A,B,C",
        )
    unknown = sorted(set(ssh_names) - {n.name for n in nodes})
    if unknown:
        raise UsageError(
            f"--ssh-name names {', '.join(unknown)}, which the CIB from {source} does not",
            hint="use Pacemaker's node names (corokey nodes --profile pacemaker lists them)",
        )
    members = []
    for node in nodes:
        members.append(Member(node, ssh_names.get(node.name, node.name)))
    for member in members:
        if member.reached:
            validate_node(member.ssh_name)
    return Topology(source, members, crm_mon is not None)


def read_topology(
    ssh: "Ssh",
    ask: "Sequence[str]",
    ssh_names: "Optional[Dict[str, str]]" = None,
    cib_file: "Optional[str]" = None,
) -> "Topology":
    """The topology from ``cib_file`` (a saved ``cibadmin -Q``), else from the first node
    of ``ask`` that answers. Raises PacemakerNodesError when none does."""
    names = ssh_names or {}
    if cib_file is not None:
        try:
            with open(cib_file, encoding="utf-8") as stream:
                text = stream.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise PacemakerNodesError(
                f"cannot read the CIB file {cib_file}: {exc}",
                hint="save one on a cluster node with: cibadmin -Q > cib.xml",
            ) from None
        return topology_from_texts(cib_file, text, None, names)
    why: List[str] = []
    for node in ask:
        try:
            cib, crm_mon = ask_cib(ssh, node)
        except NodeFailure as failure:
            why.append(failure.message)
            continue
        return topology_from_texts(node, cib, crm_mon, names)
    raise PacemakerNodesError(
        "no cluster node answered with its CIB: " + "; ".join(why or ["no node to ask"]),
        hint="ask a node where Pacemaker runs (--cib-from NODE), give a saved CIB "
        "(--cib FILE), or name the nodes with --nodes",
    )
