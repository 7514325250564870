"""The kubelet API: the HTTPS port the API server calls for ``kubectl logs`` and metrics-server
for ``kubectl top`` (server.py assembles it; auth, logs, stats, tls and view are its parts).

Layer: above pods (it reads the pod cache, the instance view and the retained logs) and below
the daemon, which starts it.
"""
