"""Station provisioning: identity, enrollment, signed configuration, the station's agent."""
