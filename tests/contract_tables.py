"""Tables written by hand from docs/mapping.md and docs/contract.md, shared by the tests.

Never read from the package, so a test compares the code with the documents, not with itself.
"""

# docs/contract.md §2, both tables, plus the name/id/time inputs.
CONTRACT_INPUTS = {
    "spotify_event_name",
    "event",
    "$event_id",
    "$event_time",
    "$action_source",
    "opt_out_targeting",
    "event_source_url",
    "amount",
    "currency",
    "content_name",
    "content_category",
    "email",
    "phone",
    "$ip",
    "$device_id",
    "$user_agent",
    "gender",
    "request_ip_address",
    "event_ip_address",
    "platform_id",
    "session_id",
    "alias_id",
    "cookie1",
    "page_id",
    "connection_type",
    "age_group",
    "$spclid",
}
