"""vk-trio: a virtual kubelet that runs Kubernetes pods as cloud GPU instances, on trio."""

__version__ = "0.1.0"
