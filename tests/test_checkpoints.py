from target_spotify_conversions.checkpoints import Checkpoints


def test_state_waits_for_the_request_holding_earlier_records():
    points = Checkpoints()
    first = points.record()
    points.hold(first)
    points.record()
    points.state({"at": 2})
    assert points.writable() is None
    points.release(first)
    assert points.writable() == {"at": 2}
    assert points.writable() is None  # written once


def test_state_after_rejected_records_only_is_writable_at_once():
    points = Checkpoints()
    points.record()
    points.record()
    points.state("s")
    assert points.writable() == "s"


def test_later_records_in_flight_do_not_hold_an_earlier_state():
    points = Checkpoints()
    points.record()
    points.state("s1")
    later = points.record()
    points.hold(later)
    assert points.writable() == "s1"


def test_newest_ready_state_supersedes_older_ones_and_order_is_kept():
    points = Checkpoints()
    a = points.record()
    points.hold(a)
    points.state("s1")
    b = points.record()
    points.hold(b)
    points.state("s2")
    points.release(b)  # the later request finished first
    assert points.writable() is None, "s1 still waits for the first request"
    points.release(a)
    assert points.writable() == "s2"
    assert points.pending_states == 0


def test_two_requests_starting_at_the_same_record_both_hold():
    points = Checkpoints()
    a = points.record()
    points.hold(a)
    points.hold(a)
    points.state("s")
    points.release(a)
    assert points.writable() is None
    points.release(a)
    assert points.writable() == "s"
