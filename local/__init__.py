"""Everything that only exists to run paysaga on one machine: the paysaga CLI, the local stack, the ASL runtime, the
crash-injection simulation, the local HTTP server and the sandbox gateway server. Never shipped to Lambda."""
