"""Real-browser tests of the Prefect UI (headless Chromium)."""
