"""Generated stubs of the ragplane.v1 contracts; regenerate with `make protos`, do not edit."""
