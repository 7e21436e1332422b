"""Record/replay transports and cassettes for httpx and httpx2 (HTTP and files only)."""
