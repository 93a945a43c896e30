"""Identifiers the SDK's flattening moved: a hint when one was seen only flattened."""

from __future__ import annotations

from target_spotify_conversions.flattening import FlattenedIdentifiers, names_read
from target_spotify_conversions.mapping import INPUT_PROPERTIES


def tracker(**paths: list[str]) -> FlattenedIdentifiers:
    return FlattenedIdentifiers("__", names_read("freshpaint", paths, INPUT_PROPERTIES, "__"))


def test_no_hint_when_an_identifier_is_also_seen_under_its_own_name():
    seen = tracker()
    seen.observe({"properties__email": "a@b.org"})
    seen.observe({"email": "c@b.org", "properties__email": None})
    assert seen.hints() == []


def test_a_hint_names_the_flattened_keys_and_whether_they_were_read():
    seen = tracker()
    for _ in range(2):
        seen.observe({"properties__email": "a@b.org", "user__device__advertisingId": "x",
                      "properties__phone": "", "note__text": "ip"})
    assert seen.hints() == [
        '$device_id was found only under flattened names ("user__device__advertisingId" in 2 '
        'records), and "user__device__advertisingId" is read by no input format, so it was '
        'not sent: add its path to property_paths ({"$device_id": '
        '["user.device.advertisingId"]}), which reads it flattened or not',
        'email was found only under flattened names ("properties__email" in 2 records), from '
        "which it was read; flattening_enabled is not needed by this target (it reads nested "
        "records itself)"]


def test_property_paths_make_a_flattened_name_read():
    seen = tracker(phone=["customer.phone"])
    seen.observe({"customer__phone": "+1 415 555 0100"})
    assert seen.hints() == [
        'phone was found only under flattened names ("customer__phone" in 1 record), from '
        "which it was read; flattening_enabled is not needed by this target (it reads nested "
        "records itself)"]
