from target_spotify_conversions.checkpoints import Checkpoints


def test_records_are_numbered_in_arrival_order():
    points = Checkpoints()
    assert [points.number() for _ in range(3)] == [0, 1, 2]


def test_state_waits_for_the_oldest_unfinished_record_before_it():
    points = Checkpoints()
    first = points.number()
    points.number()
    points.state({"at": 2})
    assert points.writable(oldest_unfinished=first) is None
    assert points.writable(oldest_unfinished=None) == {"at": 2}
    assert points.writable(oldest_unfinished=None) is None  # written once


def test_state_after_finished_records_only_is_writable_at_once():
    points = Checkpoints()
    points.number()
    points.number()
    points.state("s")
    assert points.writable(oldest_unfinished=None) == "s"


def test_later_records_unfinished_do_not_hold_an_earlier_state():
    points = Checkpoints()
    points.number()
    points.state("s1")
    later = points.number()
    assert points.writable(oldest_unfinished=later) == "s1"


def test_newest_ready_state_supersedes_older_ones_and_order_is_kept():
    points = Checkpoints()
    a = points.number()
    points.state("s1")
    b = points.number()
    points.state("s2")
    points.number()
    points.state("s3")
    assert points.writable(oldest_unfinished=a) is None, "s1 still waits for record a"
    assert points.pending_states == 3
    assert points.writable(oldest_unfinished=b + 1) == "s2"
    assert points.pending_states == 1
    assert points.writable(oldest_unfinished=None) == "s3"
    assert points.pending_states == 0
