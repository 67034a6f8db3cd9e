"""corosync.conf as a node's corosync takes it: the cmap keys of :mod:`corokey.coroparse`
for that node's generation, and the decisions corosync makes from them.

- the key: ``totem.keyfile``, else an inline ``totem.key``, else the default key
  (/etc/corosync/authkey; on 2.x ``COROSYNC_TOTEM_AUTHKEY_FILE`` when set), and only
  when crypto is on (totemconfig.c totem_config_keyread, all three versions);
- crypto (totemconfig.c totem_get_crypto): 3.x uses none/none unless ``secauth: on``
  (aes256/sha256) or crypto_cipher/crypto_hash say otherwise; 2.x uses aes256/sha1
  unless ``secauth: off`` (none/none), so a 2.x conf without crypto lines, or with
  ``crypto_cipher: none`` alone, authenticates with the key.  Unknown values (stored
  unchecked outside ``totem {}``) leave the default;
- nodes: ``nodelist.node.N.*`` however they were written (``node {}`` sections or
  dotted keys), in N's order.
"""

from typing import Dict, List, Optional, Tuple, Union

from corokey.coroparse import (
    COROSYNC3,
    CmapValue,
    ConfParseError,
    Dialect,
    dialect_for,
    parse_cmap,
)
from corokey.corosync_startup import DEFAULT_CONF_PATH
from corokey.errors import CorokeyError
from corokey.key import DEFAULT_KEY_PATH
from corokey.record import Record

__all__ = [
    "DEFAULT_CONF_PATH",
    "ConfParseError",
    "CorosyncConf",
    "Node",
    "load_conf",
    "parse_conf",
]

#: Links (3.x knet) or rings (2.x) a node may name: ring0_addr ... ring7_addr.
MAX_RINGS = 8
_CIPHERS_2 = ("none", "aes256", "aes192", "aes128", "3des")
_CIPHERS_3 = ("none", "aes256", "aes192", "aes128")
_HASHES = ("none", "md5", "sha1", "sha256", "sha384", "sha512")


class Node(Record):
    """One ``nodelist.node.N`` entry."""

    __slots__ = ("addresses", "index", "name", "nodeid")
    name: "Optional[str]"
    nodeid: "Optional[int]"
    addresses: "Tuple[str, ...]"  # ring0_addr, ring1_addr, ... in ring order
    index: int  # N in nodelist.node.N

    def __init__(
        self,
        name: "Optional[str]",
        nodeid: "Optional[int]",
        addresses: "Tuple[str, ...]",
        index: int,
    ) -> None:
        self._set(name=name, nodeid=nodeid, addresses=addresses, index=index)

    @property
    def label(self) -> str:
        """What an admin calls the node: its name, else its first address."""
        return self.name or (self.addresses[0] if self.addresses else f"nodeid {self.nodeid}")


class CorosyncConf:
    """A corosync.conf as one generation of corosync loads it."""

    def __init__(
        self,
        path: str,
        cmap: "Dict[str, CmapValue]",
        dialect: "Dialect" = COROSYNC3,
        default_key: "Optional[str]" = None,
    ) -> None:
        self.path = path
        self.cmap = cmap
        self.dialect = dialect
        #: the key corosync reads when the conf names none (2.x: COROSYNC_TOTEM_AUTHKEY_FILE)
        self.default_key = default_key or DEFAULT_KEY_PATH

    @property
    def corosync2(self) -> bool:
        return self.dialect.major < 3

    def value(self, name: str) -> "Optional[str]":
        """The cmap value of ``name`` (``totem.crypto_cipher``) as text, or None."""
        entry = self.cmap.get(name)
        return None if entry is None else str(entry.value)

    def nodes(self) -> "List[Node]":
        fields: Dict[int, Dict[str, CmapValue]] = {}
        for name, entry in self.cmap.items():
            parts = name.split(".", 3)
            if len(parts) == 4 and parts[:2] == ["nodelist", "node"] and parts[2].isdigit():
                fields.setdefault(int(parts[2]), {})[parts[3]] = entry
        result = []
        for index in sorted(fields):
            node = fields[index]
            nodeid = node.get("nodeid")
            # corosync reads it with icmap_get_uint32: a nodeid given as a dotted key is
            # text, which it does not take (3.x then refuses a knet node without one)
            nodeid_value = (
                int(nodeid.value) if nodeid is not None and nodeid.type == "u32" else None
            )
            addresses = []
            for ring in range(MAX_RINGS):
                address = node.get(f"ring{ring}_addr")
                if address is not None and address.value != "":
                    addresses.append(str(address.value))
            name_entry = node.get("name")
            result.append(
                Node(
                    str(name_entry.value) if name_entry is not None else None,
                    nodeid_value,
                    tuple(addresses),
                    index,
                )
            )
        return result

    def node_for_address(self, address: str) -> "Optional[Node]":
        for node in self.nodes():
            if address in node.addresses or address == node.name:
                return node
        return None

    def node_for_id(self, nodeid: int) -> "Optional[Node]":
        return next((n for n in self.nodes() if n.nodeid == nodeid), None)

    def crypto(self) -> "Tuple[str, str]":
        """(cipher, hash) as this generation's totem_get_crypto decides them."""
        secauth = self.value("totem.secauth")
        ciphers: Tuple[str, ...]
        if self.corosync2:
            cipher, hash_ = ("none", "none") if secauth == "off" else ("aes256", "sha1")
            ciphers = _CIPHERS_2
        else:
            cipher, hash_ = ("aes256", "sha256") if secauth == "on" else ("none", "none")
            ciphers = _CIPHERS_3
        chosen_cipher = self.value("totem.crypto_cipher")
        chosen_hash = self.value("totem.crypto_hash")
        if chosen_cipher is not None and chosen_cipher in ciphers:
            cipher = chosen_cipher
        if chosen_hash is not None and chosen_hash in _HASHES:
            hash_ = chosen_hash
        return cipher, hash_

    def crypto_refusal(self) -> "Optional[str]":
        """Why corosync refuses to start on these crypto settings, or None."""
        cipher, hash_ = self.crypto()
        if cipher != "none" and hash_ == "none":
            return "crypto_cipher requires crypto_hash with value other than none"
        return None

    def crypto_enabled(self) -> bool:
        """Whether corosync reads a key: it does unless cipher and hash are both none."""
        return self.crypto() != ("none", "none")

    def key_source(self) -> "Tuple[str, Optional[str]]":
        """Where corosync takes the key: ("file", path) or ("inline", None)."""
        keyfile = self.value("totem.keyfile")
        if keyfile is not None:
            return "file", keyfile
        if "totem.key" in self.cmap:
            return "inline", None
        return "file", self.default_key

    def logfile(self) -> "Optional[str]":
        if self.value("logging.to_logfile") in ("no", "off"):
            return None
        return self.value("logging.logfile")

    def version(self) -> "Optional[str]":
        return self.value("totem.version")


def parse_conf(
    text: "Union[str, bytes]",
    path: str = DEFAULT_CONF_PATH,
    corosync_version: "Optional[str]" = None,
    default_key: "Optional[str]" = None,
) -> "CorosyncConf":
    """corosync.conf ``text`` as corosync ``corosync_version`` (None: 3.x) loads it;
    raise :class:`ConfParseError` where that corosync refuses it."""
    dialect = dialect_for(corosync_version)
    return CorosyncConf(path, parse_cmap(text, path, dialect), dialect, default_key)


def load_conf(
    path: str = DEFAULT_CONF_PATH,
    corosync_version: "Optional[str]" = None,
    default_key: "Optional[str]" = None,
) -> "CorosyncConf":
    """Read and parse a corosync.conf file (its bytes, as corosync reads them)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise CorokeyError(
            f"cannot read {path}: {exc.strerror}",
            hint="name the cluster's configuration with --config FILE",
            reference="conf-unreadable",
        ) from None
    return parse_conf(data, path, corosync_version, default_key)


def load_local_conf(path: "Optional[str]" = None) -> "CorosyncConf":
    """This machine's corosync.conf as its corosync loads it: its generation's rules, and
    (``path`` None) the file the startup files name. Raises CorokeyError (StartupUnknown
    when the startup files leave the file unclear)."""
    from corokey.corosync_startup import Startup, StartupUnknown, read_local
    from corokey.key import local_generation

    generation = local_generation()
    version = generation.version or str(generation.major)
    try:
        started = read_local(generation.corosync2)
    except StartupUnknown:
        # With the conf named, only 2.x's default key depends on the startup files.
        if path is None or generation.corosync2:
            raise
        started = Startup(DEFAULT_CONF_PATH, None)
    return load_conf(path or started.conf_path, version, started.default_key)


def local_key_path(default: str, conf_path: "Optional[str]" = None) -> str:
    """The key file this machine's corosync reads, for commands that default to it: the
    conf's keyfile (or the default key, on 2.x perhaps COROSYNC_TOTEM_AUTHKEY_FILE);
    ``default`` where there is no readable corosync.conf or it holds the key inline.
    Raises ConfParseError or StartupUnknown rather than guess."""
    try:
        conf = load_local_conf(conf_path)
    except CorokeyError as exc:
        if exc.reference == "conf-unreadable":
            return default
        raise
    source, path = conf.key_source()
    return path if source == "file" and path else default
