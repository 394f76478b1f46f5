"""Positions and each event once: the hold rule on scripted sequences."""

import pytest

from roomcast.messages import BadInput, Event
from roomcast.rooms import Options, Room


def ev(seq, n=None):
    return Event(room="pool:p1", seq=seq, event="tick", data={"n": n if n is not None else seq})


def feed(room, seqs):
    out = []
    for s in seqs:
        out += [e.seq for e in room.on_event(ev(s))]
    return out


def resp(room, seq, epoch="e1", **more):
    held, sub, bad = room.on_response({"status": "subscribed", "channel": room.name, "seq": seq,
                                       "epoch": epoch, "replayed": more.pop("replayed", 0),
                                       "recovered": more.pop("recovered", True), **more})
    return [e.seq for e in held], sub, bad


def test_first_subscribes_send_live_history_or_stored_position():
    assert Room("pool:p1", Options()).subscribe_data("s1") == {"channel": "pool:p1"}
    assert Room("pool:p1", Options(history=True)).subscribe_data("s1") == {"channel": "pool:p1", "since": 0}
    r = Room("pool:p1", Options(since=40, epoch="e1", state=True, conflate=True))
    assert r.subscribe_data("s1") == {"channel": "pool:p1", "since": 40, "epoch": "e1", "state": True,
                                       "conflate": True}


def test_epoch_needs_since():
    with pytest.raises(ValueError):
        Room("pool:p1", Options(epoch="e1"))


def test_history_then_live_then_resume_with_the_kept_position():
    r = Room("pool:p1", Options(history=True))
    r.subscribe_data("s1")
    assert feed(r, [1, 2, 3]) == [1, 2, 3]
    held, sub, _ = resp(r, 3, replayed=3)
    assert held == [] and sub.seq == 3 and not sub.resumed and sub.since == 0
    assert feed(r, [4, 5]) == [4, 5]
    assert feed(r, [5, 4]) == []  # duplicates
    r.on_failure()  # the connection ended
    assert r.subscribe_data("s2") == {"channel": "pool:p1", "since": 5, "epoch": "e1"}
    assert feed(r, [6, 7]) == [6, 7]  # a resume's events above the kept seq go at once
    held, sub, _ = resp(r, 7, replayed=2)
    assert held == [] and sub.resumed and sub.since == 5
    assert (r.seq, r.epoch) == (7, "e1")


def test_live_first_subscribe_keeps_the_response_seq():
    r = Room("pool:p1", Options())
    r.subscribe_data("s1")
    _, sub, _ = resp(r, 42)
    assert (r.seq, r.epoch) == (42, "e1") and sub.since is None
    assert feed(r, [42, 43]) == [43]


def test_held_events_of_the_same_epoch_are_dropped():
    r = Room("pool:p1", Options(since=10, epoch="e1"))
    r.subscribe_data("s1")
    assert feed(r, [9, 10, 11]) == []  # 9 is held, and 11 waits behind it
    held, sub, _ = resp(r, 11)
    assert held == [11] and sub.recovered
    assert r.seq == 11


def test_held_events_of_a_new_stream_are_handed_over_in_order():
    # The stream was recreated by hand at first_seq 1: its seqs start again.
    r = Room("pool:p1", Options(since=10, epoch="old"))
    r.subscribe_data("s1")
    assert feed(r, [1, 2, 3, 4]) == []
    held, sub, _ = resp(r, 4, epoch="new", recovered=False, replayed=4)
    assert held == [1, 2, 3, 4] and not sub.recovered
    assert (r.seq, r.epoch) == (4, "new")
    assert feed(r, [5]) == [5]


def test_new_stream_above_the_kept_seq_is_not_held():
    # An edge recreates the stream 1,048,576 past the old one's seqs.
    r = Room("pool:p1", Options(since=10, epoch="old"))
    r.subscribe_data("s1")
    assert feed(r, [1048600, 1048601]) == [1048600, 1048601]
    held, sub, _ = resp(r, 1048601, epoch="new", recovered=False)
    assert held == [] and r.seq == 1048601


def test_new_stream_straddling_the_kept_seq_keeps_order():
    r = Room("pool:p1", Options(since=3, epoch="old"))
    r.subscribe_data("s1")
    assert feed(r, [2, 3, 4, 5]) == []  # 4 and 5 wait behind the held 2
    held, _, _ = resp(r, 5, epoch="new", recovered=False)
    assert held == [2, 3, 4, 5]


def test_a_failed_resume_drops_what_it_held():
    r = Room("pool:p1", Options(since=10, epoch="e1"))
    r.subscribe_data("s1")
    assert feed(r, [8, 9]) == []
    r.on_failure()
    assert r.seq == 10
    assert feed(r, [9, 10, 11]) == [11]  # not awaiting: duplicates are dropped


def test_state_response_sets_the_seq_even_below_the_kept_one():
    r = Room("pool:p1", Options(since=50, epoch="old", state=True))
    r.subscribe_data("s1")
    entry = {"type": "event", "event": "worker.status_changed", "room": "pool:p1", "seq": 7, "key": "worker:w1"}
    _, sub, bad = resp(r, 9, epoch="new", recovered=False, state=[entry, {"type": "event"}, 3])
    assert [e.key for e in sub.state] == ["worker:w1"]
    assert len(bad) == 2  # skipped entries are reported
    assert r.seq == 9
    assert feed(r, [10]) == [10]


def test_response_below_the_kept_seq_does_not_lower_it():
    r = Room("pool:p1", Options(since=10, epoch="e1"))
    r.subscribe_data("s1")
    resp(r, 8)
    assert r.seq == 10


def test_unreadable_response_raises():
    r = Room("pool:p1", Options())
    r.subscribe_data("s1")
    with pytest.raises(BadInput):
        r.on_response({"seq": "x"})


def test_held_events_without_a_kept_epoch_follow_recovered():
    # A since stored without its epoch: a recreated stream answers it with
    # recovered: false and its own events, whatever their seqs.
    r = Room("pool:p1", Options(since=10))
    r.subscribe_data("s1")
    assert feed(r, [3, 4]) == []
    held, _, _ = resp(r, 4, epoch="new", recovered=False)
    assert held == [3, 4]
    r = Room("pool:p1", Options(since=10))
    r.subscribe_data("s1")
    assert feed(r, [9, 10, 11]) == []
    held, _, _ = resp(r, 11, epoch="e1")
    assert held == [11]


def test_new_options_keep_the_position_unless_one_is_given():
    r = Room("pool:p1", Options(history=True))
    r.subscribe_data("s1")
    assert feed(r, [1, 2]) == [1, 2]
    resp(r, 2, replayed=2)
    r.set_options(Options(state=True))  # no position: a resume from the kept one
    assert r.subscribe_data("s2") == {"channel": "pool:p1", "since": 2, "epoch": "e1", "state": True}
    _, sub, _ = resp(r, 2)
    assert sub.resumed
    r.set_options(Options(since=0))  # a position: every retained event again
    assert r.subscribe_data("s3") == {"channel": "pool:p1", "since": 0}
    assert feed(r, [1, 2]) == [1, 2]
    _, sub, _ = resp(r, 2, replayed=2)
    assert sub.resumed  # every subscribe of a room after its first
    with pytest.raises(ValueError):
        r.set_options(Options(epoch="e1"))
