"""The `cactus` command line: run, chat, serve, tokenize, convert."""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = "Run `cactus COMMAND -h` for a command's options."


def _add_sampling(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-tokens", type=int, default=512)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)


def _options(args: argparse.Namespace) -> dict:
    opts: dict = {"max_tokens": args.max_tokens}
    for key in ("temperature", "top_p", "top_k", "seed"):
        value = getattr(args, key)
        if value is not None:
            opts[key] = value
    return opts


def _print_figures(result: dict) -> None:
    print(
        f"\n[ttft {result['time_to_first_token_ms']:.0f} ms · prefill {result['prefill_tokens']}/"
        f"{result.get('prompt_tokens', result['prefill_tokens'])} tokens at {result['prefill_tps']:.1f} tok/s · "
        f"decode {result['decode_tps']:.1f} tok/s · {result['decode_tokens']} tokens · "
        f"confidence {result['confidence']:.2f} · {result['ram_usage_mb']:.0f} MB]",
        file=sys.stderr,
    )


def _stream(token: str, _token_id: int) -> None:
    sys.stdout.write(token)
    sys.stdout.flush()


def _model_path(args: argparse.Namespace) -> str:
    if args.model:
        return str(args.model)
    from . import default_model_path

    return default_model_path()


def cmd_run(args: argparse.Namespace) -> int:
    from . import Cactus

    with Cactus(_model_path(args)) as model:
        result = model.complete(args.prompt, callback=_stream, **_options(args))
    print()
    if not result["success"]:
        print(f"cactus: {result['error']}", file=sys.stderr)
        return 1
    _print_figures(result)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from . import Cactus

    history: list = []
    with Cactus(_model_path(args)) as model:
        print("cactus chat: /reset clears the conversation, /quit or Ctrl-D leaves.", file=sys.stderr)
        while True:
            try:
                line = input("> ")
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            if line.strip() in ("/quit", "/exit"):
                return 0
            if line.strip() == "/reset":
                history.clear()
                model.reset()
                continue
            if not line.strip():
                continue
            history.append({"role": "user", "content": line})
            result = model.complete(history, callback=_stream, **_options(args))
            print()
            if not result["success"]:
                print(f"cactus: {result['error']}", file=sys.stderr)
                history.pop()
                continue
            _print_figures(result)
            history.append({"role": "assistant", "content": result["response"]})


def cmd_tokenize(args: argparse.Namespace) -> int:
    from . import Tokenizer

    # The vocabulary alone: vocab-only GGUFs work, and no weights are mapped.
    with Tokenizer(args.model) as tok:
        print(json.dumps(tok.encode(args.text)))
    return 0


def cmd_auth(args: argparse.Namespace) -> int:
    from . import cloud

    if args.auth_command == "login":
        path = cloud.save_config(args.key, args.url, args.model, args.ca_bundle)
        print(f"saved {cloud.mask(args.key)} to {path} (mode 0600)")
    elif args.auth_command == "logout":
        print("removed the stored key" if cloud.delete_config() else "no key was stored")
    else:
        cfg = cloud.load_config()
        print(f"key:    {cloud.mask(cfg.api_key)}")
        print(f"url:    {cfg.base_url}")
        print(f"model:  {cfg.model}")
        print(f"file:   {cloud.config_path()}")
        if cfg.ca_bundle:
            print(f"ca:     {cfg.ca_bundle}")
    return 0


def cmd_convert(argv: list) -> int:
    from .convert import main as convert_main

    return convert_main(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cactus", description="On-device LLM inference.", epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="answer one prompt, streaming")
    p.add_argument("prompt")
    p.add_argument("-m", "--model", help="a .gguf file or a folder holding one (default: the shipped model)")
    _add_sampling(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("chat", help="interactive multi-turn chat")
    p.add_argument("-m", "--model", help="a .gguf file or a folder holding one (default: the shipped model)")
    _add_sampling(p)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("tokenize", help="print the token ids of a text as JSON")
    p.add_argument("model")
    p.add_argument("text")
    p.set_defaults(func=cmd_tokenize)

    p = sub.add_parser("auth", help="cloud handoff credentials")
    auth = p.add_subparsers(dest="auth_command", required=True)
    login = auth.add_parser("login", help="store a cloud API key (file mode 0600)")
    login.add_argument("--key", required=True)
    login.add_argument("--url", help="OpenAI-compatible base URL, e.g. https://api.openai.com/v1")
    login.add_argument("--model", help="the cloud model to hand off to")
    login.add_argument("--ca-bundle", help="a CA bundle to trust for the cloud's certificate")
    auth.add_parser("status", help="show the configuration (the key masked)")
    auth.add_parser("logout", help="delete the stored key")
    p.set_defaults(func=cmd_auth)

    sub.add_parser("convert", help="convert a Hugging Face checkpoint to GGUF", add_help=False)
    sub.add_parser("serve", help="OpenAI-compatible HTTP server (pip install 'cactus[server]')", add_help=False)
    return parser


def main(argv: list | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "convert":
        return cmd_convert(argv[1:])
    if argv and argv[0] == "serve":
        from .server import main as serve_main

        return serve_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"cactus: {exc}", file=sys.stderr)
        return 1
