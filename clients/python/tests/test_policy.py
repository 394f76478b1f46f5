"""Backoff bounds and the close-code and error tables."""

import pytest

from roomcast.policy import Action, Backoff, ErrorAction, Retry, classify_close, classify_error


def test_backoff_doubles_from_min_to_max():
    b = Backoff(0.25, 10.0)
    assert [b.base(n) for n in range(1, 9)] == [0.25, 0.5, 1, 2, 4, 8, 10, 10]
    assert b.base(10_000) == 10.0  # no overflow however long it fails


@pytest.mark.parametrize("r", [0.0, 0.25, 0.999999])
def test_backoff_jitter_is_half_to_one_and_a_half(r):
    b = Backoff(0.25, 10.0, rand=lambda: r)
    waits = [b.next() for _ in range(8)]
    for n, w in enumerate(waits, start=1):
        assert 0.5 * b.base(n) <= w < 1.5 * b.base(n)
    assert waits[0] == pytest.approx(0.25 * (0.5 + r))


def test_backoff_random_factor_stays_in_range():
    b = Backoff(0.1, 2.0)
    for _ in range(2000):
        w = b.next()
        assert 0.05 <= w < 3.0


def test_backoff_reset_starts_over():
    b = Backoff(1.0, 10.0, rand=lambda: 0.5)
    for _ in range(5):
        b.next()
    b.reset()
    assert b.next() == 1.0


def test_backoff_rejects_bad_bounds():
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Backoff(2, 1)


def test_unavailable_retry_doubles_to_ten_seconds():
    r = Retry()
    assert [r.next() for _ in range(6)] == [1, 2, 4, 8, 10, 10]
    r.reset()
    assert r.next() == 1


@pytest.mark.parametrize("code,action", [
    (1001, Action.RECONNECT_NOW), (4012, Action.RECONNECT_NOW),
    (1000, Action.RECONNECT), (1006, Action.RECONNECT), (1011, Action.RECONNECT),
    (4008, Action.RECONNECT), (4010, Action.RECONNECT),
    (4001, Action.REFRESH_TOKEN), (1008, Action.REFRESH_TOKEN),
    (1002, Action.STOP), (1003, Action.STOP), (1007, Action.STOP), (1009, Action.STOP), (4029, Action.STOP),
    (1012, Action.RECONNECT), (4999, Action.RECONNECT),  # not in the table: a failure
])
def test_close_codes(code, action):
    assert classify_close(code) is action


@pytest.mark.parametrize("code,action", [
    ("UNAVAILABLE", ErrorAction.RETRY_LATER),
    ("RATE_LIMITED", ErrorAction.RESEND_AFTER_BACKOFF),
    ("CANCELLED", ErrorAction.NOTHING),
    ("UNAUTHENTICATED", ErrorAction.NEED_TOKEN),
    ("FORBIDDEN", ErrorAction.GIVE_UP), ("INVALID_ROOM", ErrorAction.GIVE_UP),
    ("TOO_MANY_SUBSCRIPTIONS", ErrorAction.GIVE_UP), ("BAD_REQUEST", ErrorAction.GIVE_UP),
    ("SOMETHING_NEW", ErrorAction.GIVE_UP),
])
def test_error_codes(code, action):
    assert classify_error(code) is action
