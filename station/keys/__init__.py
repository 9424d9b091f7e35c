"""The key holder's code: the vault key, keyslots, the PIN guard, field sealing, records.

Only the staff UI (and the unlock hand-over in stationd) may import it; stationd's wiring
never holds a key beyond the hand-over. See ARCHITECTURE.md.
"""
