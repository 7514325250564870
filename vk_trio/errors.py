"""The whole vk-trio exception tree, in one place, so callers can catch by meaning.

Foreign exceptions (httpx2, msgspec, OS errors) are translated where they enter our code with
``raise OurError(...) from exc``; nothing above the entry points ever sees an httpx2 exception.

    VkError
    ├── ConfigError                 bad flag, env var, config file or kubeconfig (exit 2)
    │   └── AuthError               credentials cannot be resolved (missing file, exec failed)
    ├── KubeError                   the Kubernetes API answered an error or was unreachable
    │   ├── KubeTransportError      connection refused/reset, TLS failure, timeout (retryable)
    │   └── KubeStatusError         an HTTP error with a Kubernetes Status body
    │       ├── BadRequest          400
    │       ├── Unauthorized        401
    │       ├── Forbidden           403
    │       ├── NotFound            404
    │       ├── Conflict            409 (also AlreadyExists; see ``reason``)
    │       ├── Gone                410 (resourceVersion too old: relist)
    │       ├── Invalid             422
    │       ├── TooManyRequests     429 (``retry_after`` seconds when the server said)
    │       └── ServerError         5xx
    ├── ProviderError               a cloud marketplace refused or failed (defined by providers)
    └── InvalidInput                input from outside (a pod, a Secret, a registry, a cloud, a
                                    log line) that cannot be read: out of range, not finite, too
                                    long, too deep, malformed (also a ValueError)

Every decoder of input vk-trio does not control returns a value or raises one of these errors,
never a foreign one (vk_trio/decoding.py has the bounded building blocks). Whatever a decoder
still misses is contained by vk_trio/faults.py: one pod's bad input stays that pod's problem.
"""

from __future__ import annotations


class VkError(Exception):
    """Base of every error vk-trio raises on purpose."""


class ConfigError(VkError):
    """Configuration that cannot be used; the message says which setting and why."""


class AuthError(ConfigError):
    """Credentials for the Kubernetes API cannot be resolved."""


class KubeError(VkError):
    """The Kubernetes API failed us."""


class KubeTransportError(KubeError):
    """The API server could not be reached or the connection broke (always retryable)."""


class KubeStatusError(KubeError):
    """The API server answered an HTTP error; ``reason`` and ``message`` come from its Status."""

    code: int = 0

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        reason: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.reason = reason
        self.retry_after = retry_after

    def __str__(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        return f"{self.code}{reason}: {self.message}"


class BadRequest(KubeStatusError):
    code = 400


class Unauthorized(KubeStatusError):
    code = 401


class Forbidden(KubeStatusError):
    code = 403


class NotFound(KubeStatusError):
    code = 404


class Conflict(KubeStatusError):
    code = 409


class Gone(KubeStatusError):
    code = 410


class Invalid(KubeStatusError):
    code = 422


class TooManyRequests(KubeStatusError):
    code = 429


class ServerError(KubeStatusError):
    code = 500


class ProviderError(VkError):
    """A cloud marketplace refused or failed; subclasses live with the provider contract."""


class InvalidInput(VkError, ValueError):
    """Untrusted input that cannot be decoded. The message names what was being read and why
    it was refused, and quotes at most a short excerpt of the value (never a secret's)."""


_BY_CODE: dict[int, type[KubeStatusError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}


def status_error_class(code: int) -> type[KubeStatusError]:
    """The error class for an HTTP status code (5xx → ServerError, unknown 4xx → the base)."""
    if code >= 500:
        return ServerError
    return _BY_CODE.get(code, KubeStatusError)
