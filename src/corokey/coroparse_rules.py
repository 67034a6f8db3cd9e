"""The value rules of coroparse's section states (exec/coroparse.c,
main_config_parser_cb), per generation: which keys are typed or checked, and where.

Only items inside the named sections are checked: ``totem.crypto_cipher: bogus`` at top
level is in no section state and is stored as it is.
"""

import re

INTEGER = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)\Z")

#: totem keys stored as u32 inside totem {} (both generations; 3.x adds the second set)
TOTEM_U32 = frozenset(
    [
        "version",
        "nodeid",
        "threads",
        "token",
        "token_coefficient",
        "token_retransmit",
        "hold",
        "token_retransmits_before_loss_const",
        "join",
        "send_join",
        "consensus",
        "merge",
        "downcheck",
        "fail_recv_const",
        "seqno_unchanged_const",
        "rrp_token_expired_timeout",
        "rrp_problem_count_timeout",
        "rrp_problem_count_threshold",
        "rrp_problem_count_mcast_threshold",
        "rrp_autorecovery_check_timeout",
        "heartbeat_failures_allowed",
        "max_network_delay",
        "window_size",
        "max_messages",
        "miss_count_const",
        "netmtu",
    ]
)
TOTEM_U32_3 = frozenset(
    ["token_warning", "knet_pmtud_interval", "knet_mtu", "knet_compression_threshold"]
)
#: crypto_model: 3.x asks knet which models it was built with; Debian 12's libknet1
#: has these (util_is_valid_knet_crypto_model).
KNET_CRYPTO_MODELS = ("nss", "openssl", "gcrypt")
CHOICES_3 = {
    "totem.ip_version": (("ipv4", "ipv6", "ipv6-4", "ipv4-6"), "Invalid ip_version type"),
    "totem.crypto_cipher": (
        ("none", "aes256", "aes192", "aes128"),
        "Invalid cipher type. Should be none, aes256, aes192 or aes128",
    ),
    "totem.crypto_hash": (
        ("none", "md5", "sha1", "sha256", "sha384", "sha512"),
        "Invalid hash type. Should be none, md5, sha1, sha256, sha384 or sha512",
    ),
    "totem.crypto_model": (KNET_CRYPTO_MODELS, "Invalid crypto model"),
    "system.qb_ipc_type": (("native", "shm", "socket"), "Invalid system.qb_ipc_type"),
    "system.sched_rr": (("yes", "no"), "Invalid system.sched_rr value"),
    "system.move_to_root_cgroup": (("yes", "no", "auto"), "Invalid system.move_to_root_cgroup"),
    "system.allow_knet_handle_fallback": (
        ("yes", "no"),
        "Invalid system.allow_knet_handle_fallback",
    ),
}
CHOICES_2 = {
    "totem.ip_version": (("ipv4", "ipv6"), "Invalid ip_version type"),
    "totem.crypto_type": (("nss", "aes256", "aes192", "aes128", "3des"), "Invalid crypto type"),
    "totem.crypto_cipher": (("none", "aes256", "aes192", "aes128", "3des"), "Invalid cipher type"),
    "totem.crypto_hash": (
        ("none", "md5", "sha1", "sha256", "sha384", "sha512"),
        "Invalid hash type",
    ),
    "qb.ipc_type": (("native", "shm", "socket"), "Invalid qb ipc_type"),
}
TYPED = {
    "quorum": {
        "quorum.expected_votes": "u32",
        "quorum.votes": "u32",
        "quorum.last_man_standing_window": "u32",
        "quorum.leaving_timeout": "u32",
        "quorum.two_node": "u8",
        "quorum.expected_votes_tracking": "u8",
        "quorum.allow_downscale": "u8",
        "quorum.wait_for_all": "u8",
        "quorum.auto_tie_breaker": "u8",
        "quorum.last_man_standing": "u8",
    },
    "qdevice": {
        "quorum.device.timeout": "u32",
        "quorum.device.sync_timeout": "u32",
        "quorum.device.votes": "u32",
        "quorum.device.master_wins": "u8",
    },
}
#: The section paths that set a state (PARSER_CB_SECTION_START); other sections keep
#: their parent's.
STATES = {
    "totem": "totem",
    "totem.interface": "interface",
    "totem.interface.member": "member",
    "logging.logger_subsys": "logger_subsys",
    "logging.logging_daemon": "logging_daemon",
    "uidgid": "uidgid",
    "quorum": "quorum",
    "quorum.device": "qdevice",
    "nodelist": "nodelist",
    "nodelist.node": "node",
}
RESOURCES = {
    "resources": "resources",
    "resources.system": "res_system",
    "resources.system.memory_used": "res_system_mem",
    "resources.process": "res_process",
    "resources.process.memory_used": "res_process_mem",
}
STATES_3 = {**STATES, **RESOURCES, "system": "system"}
STATES_24 = {**STATES, **RESOURCES, "qb": "qb"}
STATES_23 = {**STATES, "qb": "qb"}
#: 2.3.5's one state after a section end, from the state before it (others keep theirs,
#: so after ``uidgid {}`` every later item is still checked as uidgid's).
END_23 = {
    "interface": "totem",
    "totem": "normal",
    "qb": "normal",
    "logger_subsys": "normal",
    "logging_daemon": "normal",
    "member": "interface",
    "quorum": "normal",
    "qdevice": "quorum",
    "nodelist": "normal",
    "node": "nodelist",
}


#: totem.interface.KEY inside ``interface {}``: kept until the section ends, then stored
#: under totem.interface.LINK.KEY ("link": the link or ring number).
INTERFACE_2 = {
    "ringnumber": "link",
    "bindnetaddr": "str",
    "mcastaddr": "str",
    "broadcast": "str",
    "mcastport": "u16",
    "ttl": "u8",
}
INTERFACE_3 = {
    "linknumber": "link",
    "bindnetaddr": "str",
    "mcastaddr": "str",
    "broadcast": "str",
    "mcastport": "u16",
    "ttl": "u8",
    "knet_link_priority": "u8",
    "knet_ping_interval": "u32",
    "knet_ping_timeout": "u32",
    "knet_ping_precision": "u32",
    "knet_pong_count": "u32",
    "knet_transport": "str",
}
