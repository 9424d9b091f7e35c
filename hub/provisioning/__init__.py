"""The hub's provisioning: station enrollment, signed configuration, heartbeats, commands.

:mod:`hub.provisioning.api` is the station-facing router, :mod:`hub.provisioning.service` the
rules (shared with the admin CLI), :mod:`hub.provisioning.store` the tables on the hub's SQL
seam (:mod:`hub.db`: SQLite there, PostgreSQL in :mod:`hub.pg`).
"""
