"""The pure domain: residents, CPR numbers, GP clinics, appointments, rounds and the session.

Nothing here touches storage, key material, the network, hardware or a UI.
"""
