"""The municipality's server: provisioning API, admin CLI, rendezvous and the GP's web page."""
