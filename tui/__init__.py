"""The station's Textual apps: the staff UI and the locked UI, talking to stationd's local API."""
