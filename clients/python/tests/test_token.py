"""JWT exp parsing (unverified) and the refresh schedule."""

import base64
import json

import pytest

from roomcast.token import jwt_exp, refresh_at, retry_deadline


def jwt(payload) -> str:
    def part(obj):
        raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


def test_exp_is_read_without_verifying():
    assert jwt_exp(jwt({"exp": 1_900_000_000, "user_id": "u"})) == 1_900_000_000.0
    assert jwt_exp(jwt({"exp": 1.5})) == 1.5


@pytest.mark.parametrize("token", [
    "", "not-a-jwt", "a.b", "a.b.c.d",
    jwt({"user_id": "u"}),  # no exp
    jwt({"exp": "1900000000"}),  # a string is not a NumericDate
    jwt({"exp": True}), jwt({"exp": None}), jwt([1, 2]),
    jwt(b"\xff\xfe not json"),
    "x.!!!.y",
])
def test_exp_absent_or_malformed_is_none(token):
    assert jwt_exp(token) is None


def test_refresh_at_three_quarters_of_a_long_life():
    # 1 h token: 45 min, well before exp - 10 s.
    assert refresh_at(1000.0, 1000.0 + 3600) == 1000.0 + 2700


def test_refresh_at_latest_ten_seconds_before_exp():
    # 30 s token: 3/4 is 22.5 s, but 10 s before exp is 20 s: the earlier wins.
    assert refresh_at(1000.0, 1030.0) == 1020.0
    # 40 s: 3/4 is 30 s, exactly 10 s before.
    assert refresh_at(0.0, 40.0) == 30.0


def test_refresh_at_never_before_half_of_the_life():
    # 16 s: 10 s before exp would be 6 s, before half: half wins.
    assert refresh_at(1000.0, 1016.0) == 1008.0
    # 4 s: 10 s before exp is before it was received; refreshed at 2 s, not at once.
    assert refresh_at(1000.0, 1004.0) == 1002.0


def test_refresh_at_an_expired_token_is_due_now():
    assert refresh_at(1000.0, 990.0) <= 1000.0


def test_retries_until_the_node_closes():
    assert retry_deadline(2000.0) == 2005.0


def test_refresh_of_a_short_lived_token_waits_half_its_life():
    # min(3/4, life - 10 s) would be now, or past: asked again and again.
    assert refresh_at(1000.0, 1004.0) == 1002.0
    assert refresh_at(1000.0, 1020.0) == 1010.0
