"""The staff UI's screens: PIN entry, Today, pre-call check, attended call, wrap-up."""
