"""The one size rule (profiles.key_size over key.check_key_size).

generate, rotate and corosync-keygen all take the size of a new key from it; a
rotate with --profile fence-xvm once generated 256 bytes instead of the
profile's 512 because rotate had a size rule of its own.
"""

from __future__ import annotations

import pytest

from corokey.errors import KeySizeError
from corokey.key import KEY_LEN_MAX, KEY_LEN_MIN, check_key_size, generate_key
from corokey.profiles import PROFILES, get_profile, key_size


@pytest.mark.parametrize(
    ("name", "size"), [("corosync", 256), ("pacemaker", 256), ("fence-xvm", 512)]
)
def test_without_a_request_a_profile_gets_its_own_size(name: str, size: int) -> None:
    assert key_size(get_profile(name)) == size
    assert len(generate_key(key_size(get_profile(name)))) == size


@pytest.mark.parametrize("name", sorted(PROFILES))
@pytest.mark.parametrize("requested", [KEY_LEN_MIN, 300, KEY_LEN_MAX])
def test_a_request_within_the_range_is_granted(name: str, requested: int) -> None:
    assert key_size(PROFILES[name], requested) == requested


@pytest.mark.parametrize("name", sorted(PROFILES))
@pytest.mark.parametrize("requested", [0, -1, KEY_LEN_MIN - 1, KEY_LEN_MAX + 1])
def test_a_request_outside_the_range_names_size_range_and_default(
    name: str, requested: int
) -> None:
    profile = PROFILES[name]
    with pytest.raises(KeySizeError) as caught:
        key_size(profile, requested)
    error = caught.value
    assert error.reference == "key-size"
    assert f"a {name} key of {requested} bytes is not supported" in error.message
    assert f"<{KEY_LEN_MIN},{KEY_LEN_MAX}>" in error.message
    assert f"{profile.size} is the default" in (error.hint or "")


def test_the_library_refuses_to_generate_a_key_corosync_rejects() -> None:
    for size in (KEY_LEN_MIN - 1, KEY_LEN_MAX + 1):
        with pytest.raises(KeySizeError):
            generate_key(size)
    assert check_key_size(KEY_LEN_MIN) == KEY_LEN_MIN
