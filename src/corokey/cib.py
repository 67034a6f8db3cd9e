"""Which nodes hold Pacemaker Remote's key: read from the CIB, as Pacemaker reads it.

Every node that opens or accepts a Pacemaker Remote connection reads
/etc/pacemaker/authkey: the cluster nodes (pacemaker-controld connects), every remote
node (an ``ocf:pacemaker:remote`` primitive; pacemaker-remoted there accepts) and every
guest node (a resource with the ``remote-node`` meta attribute).  Sources (Pacemaker
2.1.5, lib/pengine/unpack.c and lib/pengine/remote.c; daemons/controld/controld_
remote_ra.c; include/crm/lrmd.h):

- a remote node is named by its connection resource's id; Pacemaker connects to the
  resource's ``server`` parameter, or the id when there is none, on ``port`` (3121,
  ``DEFAULT_REMOTE_PORT``);
- a guest node is named by the ``remote-node`` meta attribute of the resource that
  runs it; Pacemaker connects to ``remote-addr``, or the node name, on ``remote-port``;
- a bundle with a primitive runs one guest node per replica, ``BUNDLE-N``; its
  container gets the host's key file bind-mounted, so the cluster nodes' key is its
  key and corokey does not reach it on its own.

The node list of ``crm_mon --output-as=xml`` tells which nodes are online; its
``type`` is not used to tell kinds apart (a simulated or stale status can call a
remote node a member): the configuration says what a node is.
"""

from xml.etree import ElementTree

from corokey.record import Record

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Callable, Dict, Iterable, List, Optional, Tuple

#: Pacemaker Remote's TCP port when the CIB names none (include/crm/lrmd.h).
DEFAULT_REMOTE_PORT = 3121

CLUSTER = "cluster"
REMOTE = "remote"
GUEST = "guest"
BUNDLE = "bundle"
KINDS = (CLUSTER, REMOTE, GUEST, BUNDLE)

ONLINE = "online"
OFFLINE = "offline"
UNKNOWN = "unknown"


class CibError(ValueError):
    """The text is not a CIB (or not crm_mon's XML); the message says what is wrong."""


class PacemakerNode(Record):
    """One node of a Pacemaker cluster that needs Pacemaker Remote's key."""

    __slots__ = ("address", "kind", "name", "port", "resource", "state", "stopped")
    #: Pacemaker's name of the node (uname, connection resource id, remote-node).
    name: str
    kind: str
    #: Where Pacemaker connects (remote and guest nodes); a cluster node's own name.
    address: str
    port: int
    #: The resource that connects to (remote) or runs (guest, bundle) the node.
    resource: "Optional[str]"
    #: online, offline or unknown (no status read).
    state: str
    #: The resource is stopped on purpose (its target-role is Stopped).
    stopped: bool

    def __init__(
        self,
        name: str,
        kind: str,
        address: str,
        port: int = DEFAULT_REMOTE_PORT,
        resource: "Optional[str]" = None,
        state: str = UNKNOWN,
        stopped: bool = False,
    ) -> None:
        self._set(
            name=name,
            kind=kind,
            address=address,
            port=port,
            resource=resource,
            state=state,
            stopped=stopped,
        )

    def with_state(self, state: str) -> "PacemakerNode":
        return PacemakerNode(
            self.name, self.kind, self.address, self.port, self.resource, state, self.stopped
        )

    def to_json(self) -> "Dict[str, object]":
        return {
            "name": self.name,
            "kind": self.kind,
            "address": self.address,
            "port": self.port,
            "resource": self.resource,
            "state": self.state,
            "stopped_on_purpose": self.stopped,
        }


def _parse(text: str, what: str) -> "ElementTree.Element":
    # A node answered with this text: no document type, so no entity can expand (the
    # CIB and crm_mon's XML never carry one); ElementTree resolves no external entity.
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise CibError(f"{what} declares a document type or entities, which Pacemaker never writes")
    try:
        return ElementTree.fromstring(text)  # noqa: S314 - no DTD, checked above
    except ElementTree.ParseError as exc:
        raise CibError(f"{what} is not XML ({exc})") from None


class _Attributes:
    """The name/value pairs of one kind of attribute set (instance_attributes or
    meta_attributes) of an element, names lower-cased (Pacemaker compares them without
    case), the last value winning as in Pacemaker's loops.  ``with_rules``: read sets that
    carry a ``rule`` too (expand_remote_rsc_meta reads a guest's meta attributes so);
    otherwise those sets are skipped (corokey cannot evaluate rules)."""

    def __init__(self, by_id: "Dict[str, ElementTree.Element]") -> None:
        self.by_id = by_id

    def values(
        self, element: "ElementTree.Element", tag: str, with_rules: bool = False
    ) -> "Dict[str, str]":
        found: Dict[str, str] = {}
        for attribute_set in element.findall(tag):
            if attribute_set.get("id-ref"):
                referenced = self.by_id.get(attribute_set.get("id-ref", ""))
                if referenced is None:
                    continue
                attribute_set = referenced
            if not with_rules and attribute_set.find("rule") is not None:
                continue
            for pair in attribute_set.findall("nvpair"):
                if pair.get("id-ref"):
                    pair = self.by_id.get(pair.get("id-ref", ""), pair)
                name, value = pair.get("name"), pair.get("value")
                if name is not None and value is not None:
                    found.pop(name.lower(), None)  # re-inserted: the order says which came last
                    found[name.lower()] = value
        return found


def _port(text: "Optional[str]") -> int:
    try:
        port = int(text or DEFAULT_REMOTE_PORT)
    except ValueError:
        return DEFAULT_REMOTE_PORT
    return port if 0 < port < 65536 else DEFAULT_REMOTE_PORT


def nodes_from_cib(text: str) -> "List[PacemakerNode]":
    """Every node a CIB (``cibadmin -Q``) configures, cluster nodes first, in CIB order.

    Raises CibError when ``text`` is not a CIB.
    """
    root = _parse(text, "the CIB")
    configuration = root.find("configuration")
    if root.tag != "cib" or configuration is None:
        raise CibError("the text is not a CIB (no <cib><configuration>)")
    by_id = {e.get("id", ""): e for e in root.iter() if e.get("id")}
    attributes = _Attributes(by_id)
    nodes: List[PacemakerNode] = []
    remote_names = set()
    resources = configuration.find("resources")
    primitives = [] if resources is None else list(resources.iter("primitive"))
    resource_ids = {
        e.get("id")
        for e in ([] if resources is None else resources.iter())
        if e.tag in ("primitive", "group", "clone", "master", "bundle")
    }
    bundle_primitives = set()
    guests: List[PacemakerNode] = []
    remotes: List[PacemakerNode] = []
    bundles: List[PacemakerNode] = []
    for bundle in [] if resources is None else resources.iter("bundle"):
        inner = bundle.find("primitive")
        if inner is None:
            continue  # a bundle without a primitive runs no Pacemaker Remote
        bundle_primitives.add(id(inner))
        engine = next((e for e in bundle if e.tag in ("docker", "podman", "rkt")), None)
        replicas = _count(None if engine is None else engine.get("replicas"), 1)
        network = bundle.find("network")
        port = _port(None if network is None else network.get("control-port"))
        bundle_id = bundle.get("id", "")
        for index in range(replicas):
            name = f"{bundle_id}-{index}"
            bundles.append(PacemakerNode(name, BUNDLE, name, port, bundle_id))
    for primitive in primitives:
        if id(primitive) in bundle_primitives:
            continue
        agent, merged = _resolved(primitive, by_id, attributes)
        resource_id = primitive.get("id", "")
        meta = merged("meta_attributes")
        # A guest's remote-node and remote-addr are read from the primitive's own meta
        # sets, rules or not (unpack.c, expand_remote_rsc_meta).
        guest_meta = attributes.values(primitive, "meta_attributes", with_rules=True)
        stopped = meta.get("target-role", "").lower() == "stopped"
        if agent == ("ocf", "pacemaker", "remote"):
            params = merged("instance_attributes")
            remotes.append(
                PacemakerNode(
                    resource_id,
                    REMOTE,
                    # controld_remote_ra.c takes "addr" or "server", whichever comes last.
                    _last_of(params, ("server", "addr")) or resource_id,
                    _port(params.get("port")),
                    resource_id,
                    stopped=stopped,
                )
            )
            remote_names.add(resource_id)
        elif guest_meta.get("remote-node") and guest_meta["remote-node"] not in resource_ids:
            # A remote-node naming an existing resource is ignored (expand_remote_rsc_meta).
            name = guest_meta["remote-node"]
            guests.append(
                PacemakerNode(
                    name,
                    GUEST,
                    guest_meta.get("remote-addr") or name,
                    _port(guest_meta.get("remote-port")),
                    resource_id,
                    stopped=stopped,
                )
            )
            remote_names.add(name)
    nodes_section = configuration.find("nodes")
    for node in [] if nodes_section is None else nodes_section.findall("node"):
        name = node.get("uname") or ""
        # Remote nodes get a <node type="remote"> entry once they carry attributes.
        if not name or node.get("type") == "remote" or name in remote_names:
            continue
        nodes.append(PacemakerNode(name, CLUSTER, name, resource=None))
    return nodes + remotes + guests + bundles


def _resolved(
    primitive: "ElementTree.Element",
    by_id: "Dict[str, ElementTree.Element]",
    attributes: "_Attributes",
) -> "Tuple[Tuple[str, str, str], Callable[[str], Dict[str, str]]]":
    """A primitive's agent (class, provider, type) and its attribute sets, each with its
    template's (``<primitive template=ID>``) beneath its own."""
    template = by_id.get(primitive.get("template", ""))
    spec = template if template is not None and template.tag == "template" else None

    def field(name: str) -> str:
        value = primitive.get(name)
        if value is None and spec is not None:
            value = spec.get(name)
        return value or ""

    def merged(tag: str) -> "Dict[str, str]":
        values = attributes.values(spec, tag) if spec is not None else {}
        values.update(attributes.values(primitive, tag))
        return values

    return (field("class"), field("provider"), field("type")), merged


def _last_of(values: "Dict[str, str]", names: "Iterable[str]") -> "Optional[str]":
    """The value of whichever of ``names`` was set last (dicts keep insertion order)."""
    wanted = [name for name in values if name in names]
    return values[wanted[-1]] if wanted else None


def _count(text: "Optional[str]", default: int) -> int:
    try:
        return max(int(text or default), 0)
    except ValueError:
        return default


def states_from_crm_mon(text: str) -> "Dict[str, str]":
    """Node name -> online/offline from ``crm_mon --output-as=xml`` (Pacemaker 2.0.3+).

    Raises CibError when ``text`` is not crm_mon's XML.
    """
    root = _parse(text, "crm_mon's output")
    nodes = root.find("nodes")
    if root.tag != "pacemaker-result" or nodes is None:
        raise CibError("the text is not crm_mon --output-as=xml output (no <nodes>)")
    return {
        node.get("name", ""): ONLINE if node.get("online") == "true" else OFFLINE
        for node in nodes.findall("node")
        if node.get("name")
    }


def with_states(
    nodes: "Iterable[PacemakerNode]", states: "Dict[str, str]"
) -> "List[PacemakerNode]":
    """``nodes`` with the state crm_mon reports (unknown where it names none)."""
    return [node.with_state(states.get(node.name, UNKNOWN)) for node in nodes]
