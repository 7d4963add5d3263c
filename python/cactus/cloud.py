"""Cloud handoff transport and `cactus auth` key storage.

The C core decides when to hand a conversation off and builds the OpenAI chat-completions request;
this module is the default transport the SDK installs: standard-library HTTPS with certificates
always verified and a timeout. The key never appears in logs, errors or responses.
"""

from __future__ import annotations

import json
import os
import ssl
import stat
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT_S = 15.0


@dataclass
class CloudConfig:
    api_key: str | None = None
    base_url: str = DEFAULT_URL
    model: str = DEFAULT_MODEL
    ca_bundle: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cactus" / "cloud.json"


def mask(key: str | None) -> str:
    if not key:
        return "(none)"
    return key[:3] + "…" + key[-2:] if len(key) > 8 else "*" * len(key)


def load_config() -> CloudConfig:
    """The stored configuration with CACTUS_CLOUD_* environment variables on top."""
    cfg = CloudConfig()
    path = config_path()
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        cfg.api_key = data.get("api_key") or None
        cfg.base_url = data.get("base_url") or cfg.base_url
        cfg.model = data.get("model") or cfg.model
        cfg.ca_bundle = data.get("ca_bundle") or None
    env = os.environ
    cfg.api_key = env.get("CACTUS_CLOUD_API_KEY") or cfg.api_key
    cfg.base_url = env.get("CACTUS_CLOUD_URL") or cfg.base_url
    cfg.model = env.get("CACTUS_CLOUD_MODEL") or cfg.model
    cfg.ca_bundle = env.get("CACTUS_CLOUD_CA_BUNDLE") or cfg.ca_bundle
    try:
        cfg.timeout_s = float(env.get("CACTUS_CLOUD_TIMEOUT", cfg.timeout_s))
    except ValueError:
        pass
    return cfg


def save_config(api_key: str, base_url: str | None, model: str | None, ca_bundle: str | None) -> Path:
    """Writes the configuration readable by the user alone (mode 0600, created so, never widened)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"api_key": api_key, "base_url": base_url or DEFAULT_URL, "model": model or DEFAULT_MODEL}
    if ca_bundle:
        data["ca_bundle"] = str(Path(ca_bundle).resolve())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return path


def delete_config() -> bool:
    path = config_path()
    if path.exists():
        path.unlink()
        return True
    return False


class CloudError(Exception):
    """A handoff that failed; the message is safe to show (it never holds the key)."""


def _ssl_context(cfg: CloudConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cfg.ca_bundle) if cfg.ca_bundle else ssl.create_default_context()
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def post_chat_completion(request: dict, cfg: CloudConfig | None = None) -> bytes:
    """Sends one chat-completions request; returns the raw response body or raises CloudError."""
    cfg = cfg or load_config()
    if not cfg.api_key:
        raise CloudError("no cloud API key is configured (cactus auth login, or CACTUS_CLOUD_API_KEY)")
    body = dict(request)
    body["model"] = cfg.model
    body.pop("stream", None)
    url = cfg.base_url.rstrip("/") + "/chat/completions"
    if not url.startswith(("https://", "http://")):
        raise CloudError(f"cloud URL must be http(s): {cfg.base_url}")
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Authorization": f"Bearer {cfg.api_key}", "Content-Type": "application/json"},
        method="POST",
    )
    context = _ssl_context(cfg) if url.startswith("https://") else None
    try:
        with urllib.request.urlopen(req, timeout=cfg.timeout_s, context=context) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        raise CloudError(f"the cloud answered HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise CloudError(f"the cloud is unreachable: {_reason(exc.reason)}") from None
    except (TimeoutError, OSError) as exc:
        raise CloudError(f"the cloud did not answer: {_reason(exc)}") from None


def _reason(reason: Any) -> str:
    if isinstance(reason, ssl.SSLCertVerificationError):
        return "certificate verification failed"
    if isinstance(reason, (TimeoutError,)) or "timed out" in str(reason):
        return "timed out"
    return type(reason).__name__ if not isinstance(reason, str) else reason
