"""Reading node frames: events, responses, errors, and bad input."""

import json

import pytest

from roomcast.messages import BadInput, Draining, Error, Event, Pong, Response, parse_frame, subscribed_fields


def test_event_with_key_and_conflated():
    ev = parse_frame(json.dumps({
        "type": "event", "event": "worker.removed", "room": "pool:p1", "seq": 1043,
        "ts": "2026-11-26T10:00:01.002Z", "key": "worker:w1", "key_deleted": True, "conflated": 3,
        "data": {"worker_id": "w1"}, "something_new": [1],
    }))
    assert ev == Event(room="pool:p1", seq=1043, event="worker.removed", data={"worker_id": "w1"},
                       ts="2026-11-26T10:00:01.002Z", key="worker:w1", key_deleted=True, conflated=3)


def test_plain_event_defaults():
    ev = parse_frame('{"type":"event","event":"tick","room":"pool:p1","seq":7}')
    assert (ev.data, ev.key, ev.key_deleted, ev.conflated) == (None, None, False, 0)


def test_draining_pong_response_error():
    assert parse_frame('{"type":"event","event":"server.draining"}') == Draining()
    assert parse_frame('{"type":"pong","id":"x"}') == Pong("x")
    r = parse_frame('{"type":"response","event":"subscribe","id":"s1","data":{"seq":3}}')
    assert r == Response("s1", "subscribe", {"seq": 3})
    e = parse_frame('{"type":"error","event":"subscribe","id":"s2","data":{"code":"FORBIDDEN","message":"no"}}')
    assert e == Error("s2", "subscribe", "FORBIDDEN", "no", "")


def test_unasked_forbidden_names_its_room():
    e = parse_frame(json.dumps({"type": "error", "event": "subscribe", "room": "pool:p1", "data": {
        "code": "FORBIDDEN", "message": "the new token does not allow pool:p1; unsubscribed"}}))
    assert (e.id, e.room) == ("", "pool:p1")


@pytest.mark.parametrize("raw,says", [
    (b"\x00\x01", "binary"),
    ("not json", "not JSON"),
    ("[1,2]", "not a JSON object"),
    ('"text"', "not a JSON object"),
    ('{"type":"gossip"}', "unknown type"),
    ('{"no":"type"}', "unknown type"),
    ('{"type":"event","event":"tick","seq":1}', "without a room"),
    ('{"type":"event","event":"tick","room":"","seq":1}', "without a room"),
    ('{"type":"event","event":"tick","room":"pool:p1"}', "valid seq"),
    ('{"type":"event","event":"tick","room":"pool:p1","seq":"5"}', "valid seq"),
    ('{"type":"event","event":"tick","room":"pool:p1","seq":1.5}', "valid seq"),
    ('{"type":"event","event":"tick","room":"pool:p1","seq":0}', "valid seq"),
    ('{"type":"event","event":"tick","room":"pool:p1","seq":true}', "valid seq"),
    ('{"type":"response","id":"s1"}', "data"),
    ('{"type":"error","id":"s1","data":{}}', "code"),
])
def test_bad_input_says_what(raw, says):
    with pytest.raises(BadInput) as err:
        parse_frame(raw)
    assert says in str(err.value)


def test_subscribed_fields():
    assert subscribed_fields({"seq": 5, "epoch": "e-1", "replayed": 2, "recovered": False}) == (5, "e-1", 2, False)
    for bad in ({"seq": -1}, {"seq": "5"}, {"epoch": 3}, {"recovered": "yes"}, {"replayed": 1.5}):
        with pytest.raises(BadInput):
            subscribed_fields(bad)
