"""A rejection reason as rejects files and logs show it."""

from target_spotify_conversions.problems import Problem


def test_a_problem_reads_as_its_code_then_its_detail():
    problem = Problem("invalid_currency", "'ZZZ' is not an ISO 4217 currency code")
    assert str(problem) == "invalid_currency: 'ZZZ' is not an ISO 4217 currency code"


def test_problems_compare_by_value():
    assert Problem("a", "b") == Problem("a", "b")
    assert Problem("a", "b") != Problem("a", "c")
