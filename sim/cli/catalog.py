"""`tokenfactory catalog [gpus|models] [--models DIR]`: what a scenario can name."""

from __future__ import annotations

import argparse
from pathlib import Path

from sim.cli.commands import COMMANDS
from sim.errors import InputError
from sim.hardware import catalog
from sim.hardware.catalog import ModelSpec

# Beside a quantised checkpoint's config.json: its quantisation settings, not a model.
from sim.hardware.hfconfig import CONFIG_SUFFIX, QUANT_CONFIG_SUFFIX
from sim.report.catalog_text import format_gpus, format_models
from sim.scenario.load import read_model_config


def add_parser(sub) -> argparse.ArgumentParser:
    cat = sub.add_parser("catalog", help=COMMANDS["catalog"],
                         description="List the catalogue: GPUs with their peak figures, models "
                         "with their size and KV-cache bytes per token.")
    cat.add_argument("what", nargs="?", choices=("gpus", "models"), help="only this list")
    cat.add_argument("--models", metavar="DIR", type=Path, dest="models_dir",
                     help="also list every Hugging Face *_config.json in DIR (file "
                     "org--name_config.json gives model name, lower case)")
    return cat


def execute(args: argparse.Namespace) -> int:
    models, skipped = dict(catalog.models()), dict[str, str]()
    if args.models_dir is not None:
        found, skipped = read_model_dir(args.models_dir)
        models |= found
    if args.what in (None, "gpus"):
        print(format_gpus(catalog.gpus()))
    if args.what is None:
        print()
    if args.what in (None, "models"):
        print(format_models(models, skipped))
    return 0


def read_model_dir(folder: Path) -> tuple[dict[str, ModelSpec], dict[str, str]]:
    """The models of every *_config.json in `folder`, by name, and the files that gave none
    with why (an architecture not supported); `InputError` when `folder` is no directory."""
    if not folder.is_dir():
        raise InputError("--models", str(folder), "a directory of Hugging Face "
                         "*_config.json files")
    models: dict[str, ModelSpec] = {}
    skipped: dict[str, str] = {}
    for path in sorted(folder.glob(f"*{CONFIG_SUFFIX}")):
        if path.name.endswith(QUANT_CONFIG_SUFFIX):
            continue
        try:
            model = read_model_config(path, path.name)
        except InputError as exc:
            skipped[path.name] = f"{exc.value} — expected {exc.expected}"
            continue
        models[model.name] = model
    return models, skipped
