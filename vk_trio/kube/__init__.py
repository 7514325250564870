"""The only code in vk-trio that talks to the Kubernetes API server."""
