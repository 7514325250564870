"""Create bodies read the way Vast.ai reads them: limits first, then the instance they describe.

The limits are the documented ones (vast-docs create_instance): a label of 256 characters on
create, ``onstart`` + ``args`` + ``args_str`` of 4096, env entries of 256 and 32768 in total.
``env`` is a JSON object (``{"NAME": "value", "-p 8000:8000": "1"}``); the older docker-flag
string (``"-e NAME=value -p 8000:8000"``) is still understood, as the service understands it.
``runtype`` defaults to ``args`` when args are given, else ``ssh``.
"""

from __future__ import annotations

import re
from typing import Any

MAX_LABEL_ON_CREATE = 256
MAX_COMMAND_CHARS = 4096  # onstart + args + args_str
MAX_ENV_ENTRY = 256
MAX_ENV_TOTAL = 32768


def create_problem(body: dict[str, Any]) -> str:
    label = body.get("label")
    if isinstance(label, str) and len(label) > MAX_LABEL_ON_CREATE:
        return f"label longer than {MAX_LABEL_ON_CREATE}"
    command = len(body.get("onstart") or "") + len(body.get("args_str") or "")
    command += sum(len(a) for a in body.get("args") or [])
    if command > MAX_COMMAND_CHARS:
        return f"onstart + args longer than {MAX_COMMAND_CHARS} characters"
    env = body.get("env") or {}
    if isinstance(env, dict):
        sizes = [len(k) + 1 + len(v) for k, v in env.items()]
        if any(size > MAX_ENV_ENTRY for size in sizes) or sum(sizes) > MAX_ENV_TOTAL:
            return f"env entries are limited to {MAX_ENV_ENTRY} and {MAX_ENV_TOTAL} in total"
    return ""


def instance_fields(body: dict[str, Any], *, bid: bool) -> dict[str, Any]:
    env = body.get("env") or {}
    if isinstance(env, str):
        env = env_from_flags(env)
    args = list(body.get("args") or [])
    runtype = body.get("runtype") or ("args" if args or body.get("args_str") else "ssh")
    return {
        "image": body["image"],
        "label": body.get("label"),
        "runtype": runtype,
        "onstart": body.get("onstart"),
        "args": args,
        "env": dict(env),
        "disk": float(body.get("disk") or 8.0),
        "bid": bid,
    }


def env_from_flags(text: str) -> dict[str, str]:
    """The docker-flag string form: ``-e K=V -p 8000:8000``."""
    env: dict[str, str] = {}
    for flag, value in re.findall(r"(-[ep])\s+(\S+)", text):
        if flag == "-e" and "=" in value:
            key, val = value.split("=", 1)
            env[key] = val
        elif flag == "-p":
            env[f"-p {value}"] = "1"
    return env
