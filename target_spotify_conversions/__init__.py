"""Singer target for the Spotify Conversions API."""
