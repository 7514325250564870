"""Desired state (pods in the API) ↔ actual state (instances at the provider)."""
