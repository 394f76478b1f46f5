"""A followed room's position and the rule that hands each event over once:
docs/protocol.md section 3, "Positions", "Each event once", "The response".

Pure: the client feeds it the node's events and responses of the room and
hands over what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .messages import BadInput, Event, Subscribed, parse_event, subscribed_fields
from .policy import Backoff, Retry


@dataclass(frozen=True)
class Options:
    """How a room is subscribed; `since`/`epoch` are the application's stored position."""

    history: bool = False
    since: Optional[int] = None
    epoch: Optional[str] = None
    state: bool = False
    conflate: bool = False


@dataclass(frozen=True)
class Position:
    """The last seq handed to the application and the epoch it came after."""

    seq: Optional[int]
    epoch: Optional[str]


class Room:
    """One followed room: its kept position, and the events held while a
    resume's response is awaited."""

    def __init__(self, name: str, options: Options, backoff_min: float = 0.25,
                 backoff_max: float = 10.0) -> None:
        self.name = name
        self.seq: Optional[int] = None
        self.epoch: Optional[str] = None
        self.set_options(options)
        self._sent_once = False  # a later subscribe is a resubscription
        self._awaiting: Optional[str] = None  # the id of the subscribe whose answer is awaited
        self.current_id: Optional[str] = None  # the id of the room's latest subscribe
        self.retry = Retry()  # after UNAVAILABLE
        self.rate = Backoff(backoff_min, backoff_max)  # after RATE_LIMITED
        self._resubscription = False
        self._since_sent: Optional[int] = None
        self._held: list[Event] = []

    def set_options(self, options: Options) -> None:
        """Takes a subscribe's options: a position given (since, even 0)
        replaces the kept one; without, the kept one stays (a resume)."""
        if options.epoch is not None and options.since is None:
            raise ValueError("epoch needs since")
        if options.since is not None and options.since < 0:
            raise ValueError("since must be >= 0")
        self.options = options
        if options.since is not None:
            self.seq, self.epoch = (options.since or None), options.epoch
        self._first_since = options.since if options.since is not None else (0 if options.history else None)

    def position(self) -> Position:
        return Position(self.seq, self.epoch)

    def subscribe_data(self, request_id: str) -> dict:
        """The data of the next subscribe of the room, which is now awaited."""
        data: dict = {"channel": self.name}
        since = self.seq if self.seq is not None else self._first_since
        if since is not None:
            data["since"] = since
            if self.epoch:
                data["epoch"] = self.epoch
        if self.options.state:
            data["state"] = True
        if self.options.conflate:
            data["conflate"] = True
        self._resubscription = self._sent_once
        self._sent_once = True
        self._awaiting = request_id
        self.current_id = request_id
        self._since_sent = since
        self._held.clear()
        return data

    @property
    def awaiting(self) -> Optional[str]:
        """The id of the subscribe whose answer is awaited, or None."""
        return self._awaiting

    def on_event(self, ev: Event) -> list[Event]:
        """What to hand over of one event of the room (nothing, or the event)."""
        if self._awaiting is not None and self._since_sent is not None and self.seq is not None:
            # A resume: an event at or below the kept seq may be the new
            # stream's (the response's epoch tells); later events wait
            # behind a held one so that the order stays.
            if self._held or ev.seq <= self.seq:
                self._held.append(ev)
                return []
        if self.seq is not None and ev.seq <= self.seq:
            return []  # a duplicate
        self.seq = ev.seq
        return [ev]

    def on_response(self, data: dict) -> tuple[list[Event], Subscribed, list[str]]:
        """The held events to hand over, the response to hand over after them,
        and the state entries that could not be read (bad input, skipped).
        Raises BadInput when the response itself cannot be read."""
        seq, epoch, replayed, recovered = subscribed_fields(data)
        state, bad = _state_entries(data)
        # Held events are another stream's when the response names another
        # one; without a kept epoch (a since the application gave alone),
        # when it says recovered: false, as a since from an older stream is
        # answered.
        if self.epoch:
            changed = bool(epoch) and epoch != self.epoch
        else:
            changed = not recovered
        out: list[Event] = []
        for ev in self._held:
            if changed:
                out.append(ev)  # the new stream's events: its seqs start anywhere
            elif self.seq is None or ev.seq > self.seq:
                out.append(ev)
                self.seq = ev.seq
        self._held.clear()
        if self.seq is None or changed or state is not None or seq > self.seq:
            self.seq = seq
        if epoch:
            self.epoch = epoch
        sub = Subscribed(self.name, seq, epoch, replayed, recovered,
                         self._resubscription, self._since_sent, state)
        self._awaiting = None
        return out, sub, bad

    def on_failure(self) -> None:
        """The awaited subscribe was refused, or its connection ended: the
        held events are dropped; the next subscribe resumes from the kept
        position and gets them again if they are new."""
        self._awaiting = None
        self._held.clear()


def _state_entries(data: dict) -> tuple[Optional[list[Event]], list[str]]:
    raw = data.get("state")
    if raw is None:
        return None, []
    if not isinstance(raw, list):
        raise BadInput("a subscribe response whose state is not an array")
    entries: list[Event] = []
    bad: list[str] = []
    for entry in raw:
        try:
            if not isinstance(entry, dict):
                raise BadInput("a state entry that is not an object")
            entries.append(parse_event(entry))
        except BadInput as err:
            bad.append(str(err))
    return entries, bad
