"""The appliance test: a booted Debian 13 under QEMU (see test_appliance.py)."""
