"""Routing a record to a connection: its property, then its stream, then the default."""

from __future__ import annotations

import pytest

from target_spotify_conversions.routing import DEFAULT_CONNECTION, Router, shown

NAMES = ("brand_a", "brand_b", DEFAULT_CONNECTION)


def router(**kwargs: object) -> Router:
    return Router(NAMES, **kwargs)  # type: ignore[arg-type]


def test_the_property_wins_over_the_stream_and_the_default() -> None:
    routes = router(connection_property="brand", stream_connections={"orders_b": "brand_b"})
    assert routes.route({"brand": "brand_a"}, "orders_b").connection == "brand_a"
    assert routes.route({"brand": " brand_a "}, "orders_b").connection == "brand_a"
    assert routes.route({}, "orders_b").connection == "brand_b"
    assert routes.route({"brand": ""}, "orders_b").connection == "brand_b"  # empty is absent
    assert routes.route({"brand": None}, "other").connection == DEFAULT_CONNECTION


def test_a_dotted_path_is_read_as_property_paths_read_it() -> None:
    routes = router(connection_property="context.brand")
    assert routes.route({"context": {"brand": "brand_b"}}, "s").connection == "brand_b"
    assert routes.route({"context.brand": "brand_a"}, "s").connection == "brand_a"
    assert routes.route({"context": "brand_b"}, "s").connection == DEFAULT_CONNECTION


def test_a_value_naming_no_connection_is_rejected_not_sent_elsewhere() -> None:
    route = router(connection_property="brand").route({"brand": "brand_c"}, "s")
    assert route.connection is None
    assert route.problem is not None
    assert route.problem.code == "unknown_connection"
    assert "'brand_c'" in str(route.problem)
    assert "brand_a, brand_b, default" in str(route.problem)


def test_nothing_routes_without_a_top_level_connection() -> None:
    routes = Router(("brand_a",), connection_property="brand")
    route = routes.route({}, "orders")
    assert route.connection is None
    assert route.problem is not None
    assert route.problem.code == "unknown_connection"
    assert "no top-level capi_connection_id" in str(route.problem)


def test_one_connection_takes_everything() -> None:
    only = Router((DEFAULT_CONNECTION,))
    assert only.route({"anything": 1}, "s").connection == DEFAULT_CONNECTION


@pytest.mark.parametrize(
    "value",
    [
        "jane.doe@example.com",
        "+1 415 555 0100",
        "4155550100",
        "a" * 65,
        "two words",
        "tok_" + "x" * 70,
    ],
)
def test_a_value_that_may_be_personal_is_never_shown(value: str) -> None:
    route = router(connection_property="brand").route({"brand": value}, "s")
    assert route.problem is not None
    assert value.strip() not in str(route.problem)
    assert f"a string of {len(value)} characters" in str(route.problem)


def test_values_that_are_no_strings_show_their_kind_only() -> None:
    assert shown(4155550100) == "(a number, not shown)"
    assert shown({"email": "x@y.z"}) == "(a value of type dict, not shown)"
    assert shown(True) == "true"
    assert shown("brand_7") == "'brand_7'"


def test_a_named_connection_alone_still_needs_a_route() -> None:
    """One entry in `connections` and no routing: records are not all sent there (a missing
    connection_property in one environment must not give every brand's events to one)."""
    router = Router(["brand_a"])
    route = router.route({"email": "a@b.co"}, "orders")
    assert route.connection is None
    assert route.problem is not None
    assert route.problem.code == "unknown_connection"
    assert Router([DEFAULT_CONNECTION]).route({}, "orders").connection == DEFAULT_CONNECTION


def test_an_unknown_value_lists_a_few_known_names_not_a_thousand() -> None:
    router = Router([f"brand_{n:04d}" for n in range(1000)], connection_property="brand")
    problem = router.route({"brand": "nope"}, "orders").problem
    assert problem is not None
    assert "brand_0009" in problem.detail
    assert "brand_0010" not in problem.detail
    assert "and 990 more" in problem.detail
