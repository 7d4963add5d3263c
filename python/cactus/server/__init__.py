"""`cactus serve`: an OpenAI-compatible HTTP server over the cactus engine.

    cactus serve [MODEL_PATH ...] [--host 127.0.0.1] [--port 8080] [--api-key KEY ...] [--zone CODE]
                 [--peer CODE=URL ...] [--name NAME ...] [--workers N] [--insecure]

Needs the ``server`` extra (fastapi, uvicorn; httpx for peer zones).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

__all__ = ["add_arguments", "build_parser", "main"]


def _size(text: str) -> int:
    units = {"k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "g": 1 << 30, "gb": 1 << 30}
    t = text.strip().lower()
    for suffix in sorted(units, key=len, reverse=True):
        if t.endswith(suffix):
            return int(float(t[: -len(suffix)]) * units[suffix])
    value = int(t)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `cactus serve` (for the `cactus` command's sub-parser)."""
    parser.add_argument(
        "models",
        nargs="*",
        metavar="MODEL_PATH",
        help="a .gguf file or a folder holding one (default: the bundled model)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="accepted bearer key, repeatable (default: env CACTUS_API_KEYS, comma-separated)",
    )
    parser.add_argument("--zone", default="local", help="this server's zone code (default 'local')")
    parser.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="CODE=URL",
        help="a peer server for zone CODE, repeatable",
    )
    parser.add_argument(
        "--name",
        action="append",
        default=[],
        metavar="NAME",
        help="model id, one per MODEL_PATH (default: its stem)",
    )
    parser.add_argument("--workers", type=int, default=1, help="engine handles (parallel requests) per model")
    parser.add_argument(
        "--max-queue", type=int, default=64, help="waiting requests per model before 429 (64)"
    )
    parser.add_argument(
        "--max-body", type=_size, default=1 << 20, help="largest request body, e.g. 1MB (default)"
    )
    parser.add_argument(
        "--max-tokens", type=int, default=512, help="max_tokens when a request gives none (512)"
    )
    parser.add_argument(
        "--ctx-size", type=int, default=None, help="context size of each handle (model default)"
    )
    parser.add_argument(
        "--insecure", action="store_true", help="allow a non-loopback address with no API key"
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cactus serve", description="OpenAI-compatible server for cactus models."
    )
    add_arguments(parser)
    return parser


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _model_id(path: Path) -> str:
    return path.stem if path.suffix.lower() == ".gguf" else path.name


def _resolve_models(paths: list[str], names: list[str]) -> dict[str, str]:
    if not paths:
        from .. import DEFAULT_MODEL, default_model_path

        try:
            paths = [default_model_path()]
        except FileNotFoundError as exc:
            raise SystemExit(
                f"cactus serve: no MODEL_PATH given and the default model {DEFAULT_MODEL!r} is not installed "
                f"({exc}). Pass a .gguf file or a folder holding one."
            ) from None
    if names and len(names) != len(paths):
        raise SystemExit(
            f"cactus serve: {len(names)} --name for {len(paths)} models; give one per MODEL_PATH"
        )
    models: dict[str, str] = {}
    for i, raw in enumerate(paths):
        path = Path(raw).expanduser()
        if not path.exists():
            raise SystemExit(f"cactus serve: no such model file or folder: {raw}")
        if path.is_dir() and not any(path.glob("*.gguf")):
            raise SystemExit(f"cactus serve: the folder {raw} holds no .gguf file")
        model_id = names[i] if names else _model_id(path)
        if model_id in models:
            raise SystemExit(
                f"cactus serve: two models have the id {model_id!r}; tell them apart with --name"
            )
        models[model_id] = str(path)
    return models


def _parse_peers(specs: list[str], zone: str) -> dict[str, str]:
    peers: dict[str, str] = {}
    for spec in specs:
        code, sep, url = spec.partition("=")
        code, url = code.strip(), url.strip()
        if not sep or not code or not url.startswith(("http://", "https://")):
            raise SystemExit(f"cactus serve: --peer wants CODE=http(s)://HOST:PORT, got {spec!r}")
        if code == zone:
            raise SystemExit(f"cactus serve: --peer {code} is this server's own zone")
        peers[code] = url
    return peers


def main(argv: list[str] | None = None) -> int:
    """Runs the server until interrupted; returns the exit status (2: bad usage, 1: failed to start)."""
    args = build_parser().parse_args(argv)
    try:
        return _serve(args)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 2
        return int(exc.code or 0)


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .app import ServerConfig, create_app
        from .scheduler import Scheduler
    except ImportError as exc:
        raise SystemExit(
            f"cactus serve needs the server extra: pip install 'cactus[server]' ({exc})"
        ) from None

    keys = [k for k in args.api_key if k] or [
        k.strip() for k in os.environ.get("CACTUS_API_KEYS", "").split(",") if k.strip()
    ]
    if not keys and not _is_loopback(args.host) and not args.insecure:
        raise SystemExit(
            f"cactus serve: refusing to listen on {args.host} without an API key; pass --api-key KEY "
            "(or set CACTUS_API_KEYS), or --insecure to serve anyone who can reach it"
        )
    if args.workers < 1 or args.max_queue < 1:
        raise SystemExit("cactus serve: --workers and --max-queue must be at least 1")
    peers = _parse_peers(args.peer, args.zone)
    if peers:
        try:
            import httpx  # noqa: F401
        except ImportError:
            raise SystemExit("cactus serve: --peer needs httpx: pip install 'cactus[server]'") from None
    models = _resolve_models(args.models, args.name)
    config = ServerConfig(
        zone=args.zone,
        peers=peers,
        api_keys=keys,
        max_body=args.max_body,
        max_tokens=args.max_tokens,
        ctx_size=args.ctx_size,
    )
    try:
        scheduler = Scheduler(models, workers=args.workers, max_queue=args.max_queue)
    except RuntimeError as exc:
        print(f"cactus serve: cannot load the model: {exc}", file=sys.stderr)
        return 1
    try:
        app = create_app(scheduler, config)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=args.host,
                port=args.port,
                log_level=args.log_level,
                lifespan="on",
                timeout_graceful_shutdown=5,
            )
        )
        print(
            f"cactus serve: {', '.join(models)} on http://{args.host}:{args.port} (zone {config.zone}"
            + (f"; peers {', '.join(f'{k}={v}' for k, v in peers.items())}" if peers else "")
            + ("; API keys required" if keys else "; no API key")
            + ")",
            file=sys.stderr,
            flush=True,
        )
        try:
            server.run()
        except SystemExit as exc:  # uvicorn exits when it cannot bind
            return int(exc.code or 1) if not isinstance(exc.code, str) else 1
        return 0 if server.started else 1
    finally:
        scheduler.close()
