"""Command line: `tokenfactory COMMAND ...`, one module per command.

The CLI is the only layer that prints or exits. Bad input of any kind (flags, YAML, data
files) ends with exit status 2 and one line on stderr naming what was wrong and what is
accepted. Each command module offers `add_parser(subparsers)` and `execute(args) -> int`;
`main` imports only the module of the command it runs (the others are listed from
`commands.COMMANDS`), so start-up costs what that command needs and no more.

`main` is also the one edge every failure passes: whatever escapes a command ends as one
line on stderr, never a traceback — Ctrl-C as `interrupted` and status 130 (the shell's),
exhausted memory and anything unexpected as status 1 (the latter with a request to report
it). Every line it writes is `printable`, as messages quote keys and values from the
user's files. Set TOKENFACTORY_DEBUG=1 to get the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
from concurrent.futures import BrokenExecutor
from typing import TextIO

import sim
from sim.cli.commands import COMMANDS
from sim.cli.common import Parser, one_line_warnings
from sim.errors import InputError
from sim.report.text import printable

DEBUG_ENV = "TOKENFACTORY_DEBUG"  # set (to anything but "" or 0): tracebacks, not one line
INTERRUPTED = 130  # the shell's status for a command stopped by Ctrl-C (128 + SIGINT)
FAILED = 1
MESSAGE_LIMIT = 300  # characters of an unexpected exception's message worth a line

EXAMPLES = """\
examples:
  tokenfactory run scenarios/chat-8b-h100.yaml
      simulate the default chat fleet and print latency, utilisation and $/1M tokens
  tokenfactory run scenarios/chat-8b-h100.yaml --json out/result.json --seed 7
      same with another seed, and write the machine-readable result
  tokenfactory run scenarios/rag-70b-h100-tp4.yaml --exact
      simulate every decode step one by one (slow; for checking the fast mode)
  tokenfactory sweep scenarios/chat-8b-h100-sweep.yaml -o out/sweep
      utilisation sweep with sampled inputs: runs.csv, summary.json, cost chart
  tokenfactory plan scenarios/chat-8b-plan.yaml -o out/plan --workers 2
      fewest replicas per forecast period and deployment option; plan.json, plan.csv, figures
  tokenfactory stress scenarios/chat-8b-plan.yaml -o out/stress
      the fleet under demand × 1.25/1.5/2 and a replica down: attainment, extra GPUs
  tokenfactory catalog
      list the GPUs and models scenarios can name
  tokenfactory trace fit AzureLLMInferenceTrace_conv.csv -o workload.yaml
      fit arrivals and lengths to a request trace; `tokenfactory trace --help` for more
  tokenfactory validate MEASUREMENTS.yaml --csv validation.csv --plot validation.png
      simulate published benchmark rows and report the error per row (see validate --help)
  tokenfactory report out/sweep
      capacity-review report of a sweep, run or plan folder: one self-contained HTML file

A scenario is a YAML file; see scenarios/ and the README for every key.
"""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `only`, that command's in full and the others as one-line
    entries (enough for `--help` and for argparse to name a mistyped command)."""
    parser = Parser(
        prog="tokenfactory",
        description="Discrete-event capacity planning for LLM inference fleets: simulate "
        "arrivals, routing, continuous batching and KV-cache memory on a GPU fleet, and report "
        "latency percentiles, utilisation, SLO attainment and cost per delivered token.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {sim.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=Parser)
    for name, line in COMMANDS.items():
        if only is None or name == only:
            command = importlib.import_module(f"sim.cli.{name}")
            command.add_parser(sub).set_defaults(execute=command.execute)
        else:
            sub.add_parser(name, help=line, add_help=False)
    return parser


def _command(argv: list[str]) -> str | None:
    """The command `argv` names: its first word that is not an option."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status. Nothing but SystemExit (argparse's exit 2, --help)
    leaves here as an exception, unless TOKENFACTORY_DEBUG asks for the traceback."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        if _debugging():
            raise
        return _say("tokenfactory: interrupted", INTERRUPTED)
    except MemoryError:
        if _debugging():
            raise
        return _say("tokenfactory: error: the run needs more memory than is available; "
                    "lower duration_s, the arrival rate, the replications or points of a "
                    "sweep, the draws of a plan or stress, or --workers", FAILED)
    except BrokenExecutor as exc:
        if _debugging():
            raise
        return _say("tokenfactory: error: a worker process stopped abruptly (killed, or out "
                    "of memory); try fewer --workers or a smaller run "
                    f"({type(exc).__name__})", FAILED)
    except Exception as exc:
        if _debugging():
            raise
        return _say(f"tokenfactory: internal error: {type(exc).__name__}: {_message(exc)} — "
                    "please report it with the command that caused it", FAILED)


def _main(argv: list[str] | None) -> int:
    words = sys.argv[1:] if argv is None else argv
    named = _command(words)
    # An unknown or missing command needs no command module: argparse names the choices.
    parser = build_parser(named if named in COMMANDS else "")
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra_argv = extra
    try:
        with one_line_warnings(getattr(args, "quiet", False)), \
                contextlib.redirect_stdout(_Printable(sys.stdout)):
            status: int = args.execute(args)
            return status
    except InputError as exc:
        return _say(f"tokenfactory: error: {exc}", 2)
    except BrokenPipeError:  # output piped into `head` and cut short: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


class _Printable(io.TextIOBase):
    """stdout as the commands see it: every control character a user's string could carry
    (ESC sequences that clear the screen or write the clipboard, a carriage return) is shown
    as an escape, whatever printed it; the newlines and tabs of our own layout pass."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        self.inner.write(printable(text, keep="\n\t"))
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def fileno(self) -> int:
        return self.inner.fileno()

    def isatty(self) -> bool:
        return self.inner.isatty()


def _debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _message(exc: BaseException) -> str:
    """The exception's message, cut to a line's worth (its text may quote any input)."""
    try:
        text = str(exc)
    except Exception:  # a message that cannot even be made is no reason for a traceback
        text = "(no message)"
    text = " ".join(text.split()) or "(no message)"
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT - 3] + "..."


def _say(line: str, status: int) -> int:
    """Write `line` to stderr as one printable line and return `status`. A stderr that is
    gone (closed, a broken pipe) cannot be told anything: the status still says it."""
    try:
        sys.stderr.write(printable(line) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return status
