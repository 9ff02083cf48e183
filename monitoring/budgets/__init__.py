"""The budget pages: each budget's spend against its limits, forecast and history."""
