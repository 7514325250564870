"""A fault-injecting HTTPS proxy for the Kubernetes API server (see proxy.py)."""

from tests.faultproxy.faults import RequestInfo, status_json, watch_error_line
from tests.faultproxy.proxy import FaultProxy

__all__ = ["FaultProxy", "RequestInfo", "status_json", "watch_error_line"]
