"""Our Node object: registration, the lease heartbeat, and status/conditions."""
