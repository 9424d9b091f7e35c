"""The contract between stationd and its UIs: the wire models and the clients.

Imported by stationd (which serves it) and by both UIs (which call it), nothing else.
"""
