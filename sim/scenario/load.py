"""Loading a scenario: one YAML file (or mapping) → one validated, frozen `Scenario`.

This is the only place that reads the files a scenario refers to (length files, traces,
model config.json files), each once per process while it is unchanged
(`sim.scenario.files`): a file named by every scenario of a sweep is parsed once and shared
(the arrays are read-only).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from sim.errors import InputError
from sim.hardware.catalog import ModelSpec
from sim.hardware.hfconfig import display_name, model_from_config, model_name, quant_config_name
from sim.scenario import files, yamlfile
from sim.scenario.base import MAX_TOKEN_COUNT
from sim.scenario.schema import DISCRIMINATOR_VALUES, Scenario, context_problem
from sim.scenario.traces import read_trace_file
from sim.scenario.translate import translate
from sim.scenario.workload import EmpiricalLengths


def load_scenario(source: str | Path | Mapping[str, Any], *,
                  base_dir: Path | None = None) -> Scenario:
    """Validate a scenario from a YAML path or a mapping; raise `InputError` on any problem.
    Relative data paths in a mapping resolve against `base_dir` (default: the working dir)."""
    if isinstance(source, Mapping):
        raw, base_dir = dict(source), base_dir or Path.cwd()
    else:
        path = Path(source)
        raw, base_dir = read_mapping(path), path.parent
    raw = _load_model_config(raw, base_dir)
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise translate(exc, raw, DISCRIMINATOR_VALUES) from None
    return _resolve_paths(_load_trace(_load_empirical(scenario, base_dir), base_dir), base_dir)


def _resolve_paths(scenario: Scenario, base_dir: Path) -> Scenario:
    """A profile given as a file path is read relative to the scenario's folder."""
    profile = scenario.profile
    if isinstance(profile, str) and profile.endswith(".yaml"):
        path = Path(profile) if Path(profile).is_absolute() else base_dir / profile
        if not path.is_file():
            raise InputError("profile", profile, "a profile name or an existing profile file")
        return scenario.model_copy(update={"profile": str(path.resolve())})
    return scenario


def read_mapping(path: Path) -> dict[str, Any]:
    """The scenario file's raw mapping (its name defaults to the file's stem), unvalidated."""
    raw = _read_yaml(path)
    raw.setdefault("name", path.stem)
    return raw


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = yamlfile.read_text(path, "a scenario file")
    except FileNotFoundError:
        raise InputError(str(path), "no such file", "a readable scenario YAML file") from None
    except OSError as exc:
        raise InputError(str(path), exc.strerror, "a readable scenario YAML file") from None
    except UnicodeDecodeError:
        raise InputError(str(path), "not UTF-8 text", "a UTF-8 scenario YAML file") from None
    raw = yamlfile.loads(text, str(path))
    if not isinstance(raw, dict):
        raise InputError(str(path), raw, "a YAML mapping of scenario keys at the top level")
    return raw


def _load_empirical(scenario: Scenario, base_dir: Path) -> Scenario:
    updates = {}
    for field in ("prompt_tokens", "output_tokens"):
        spec = getattr(scenario.workload, field)
        if isinstance(spec, EmpiricalLengths):
            path = Path(spec.path) if Path(spec.path).is_absolute() else base_dir / spec.path
            values = read_lengths_file(path, f"workload.{field}.path")
            updates[field] = spec.model_copy(update={"values": values})
    if not updates:
        return scenario
    workload = scenario.workload.model_copy(update=updates)
    # Read now, a file's longest length is a bound like a `fixed` value: check the context.
    problem = context_problem(scenario.model, workload)
    if problem is not None:
        key, value, expected = problem
        if key.endswith(".path"):
            field = key.split(".")[1]
            value = f"{getattr(workload, field).path} (longest: {value:,} tokens)"
        raise InputError(key, value, expected)
    return scenario.model_copy(update={"workload": workload})


def _load_trace(scenario: Scenario, base_dir: Path) -> Scenario:
    spec = scenario.workload.trace
    if spec is None:
        return scenario
    path = Path(spec.path) if Path(spec.path).is_absolute() else base_dir / spec.path
    columns = None if spec.columns is None else spec.columns.model_dump()
    requests, file = read_trace_file(path, spec.format, columns, spec.timestamp_unit,
                                     key="workload.trace.path")
    trace = spec.with_requests(requests, file)
    workload = scenario.workload.model_copy(update={"trace": trace})
    return scenario.model_copy(update={"workload": workload})


HF_CONFIG_KEY = "model.hf_config"


def _load_model_config(raw: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """`model: {hf_config: path}` → the model that config.json describes (read before the
    scenario is validated: the checks of what can be served need the model)."""
    model = raw.get("model")
    if not isinstance(model, Mapping) or "hf_config" not in model:
        return raw
    others = sorted(str(key) for key in model if key != "hf_config")
    if others:
        raise InputError(f"model.{others[0]}", model[others[0]], "no other key beside "
                         "hf_config: the config.json gives the whole model")
    value = model["hf_config"]
    if not isinstance(value, str) or not value:
        raise InputError(HF_CONFIG_KEY, value, "a path to a Hugging Face config.json file")
    path = Path(value) if Path(value).is_absolute() else base_dir / value
    return {**raw, "model": read_model_config(path, HF_CONFIG_KEY)}


# Quantised checkpoints list every excluded module: the largest published config.json is
# ~3 MiB; a file far over that is not one.
MAX_MODEL_CONFIG_BYTES = 32 << 20
MODEL_CONFIG_CACHE_ENTRIES = 16  # distinct config.json files kept parsed per process
_MODEL_CONFIGS: files.FileCache[ModelSpec] = files.FileCache(MODEL_CONFIG_CACHE_ENTRIES)


def read_model_config(path: Path, key: str) -> ModelSpec:
    """The model of a Hugging Face config.json (`org--name_config.json` names it `name`);
    `InputError` naming `key` when it is missing, not JSON or of an unsupported
    architecture. Only regular files up to MAX_MODEL_CONFIG_BYTES are read."""
    files.check_regular(path, key, MAX_MODEL_CONFIG_BYTES, "config.json file")
    stamp = files.stamp(path)
    if stamp is None:  # the read fails and says why
        return _parse_model_config(path, key)
    return _MODEL_CONFIGS.get(stamp, lambda: _parse_model_config(path, key))


def _parse_model_config(path: Path, key: str) -> ModelSpec:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(key, str(path), "an existing config.json file") from None
    except (OSError, UnicodeDecodeError):
        raise InputError(key, str(path), "a readable UTF-8 config.json file") from None
    except json.JSONDecodeError as exc:
        raise InputError(key, str(path), f"a JSON file (line {exc.lineno}: {exc.msg})"
                         ) from None
    if not isinstance(config, dict):
        raise InputError(key, str(path), "a JSON object of model config keys")
    return model_from_config(config, model_name(path.name), key, display_name(path.name),
                             quant_config=_quant_config(path, key))


def _quant_config(path: Path, key: str) -> dict[str, Any] | None:
    """The checkpoint's quantisation settings beside its config.json (ModelOpt's
    `org--name_hf_quant_config.json`), which name the blocks kept 16-bit; None without one."""
    beside = path.with_name(quant_config_name(path.name))
    if not beside.is_file():
        return None
    try:
        quant = json.loads(beside.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(key, str(beside), "a readable JSON file of quantisation settings "
                         "(or no such file beside the config)") from None
    if not isinstance(quant, dict):
        raise InputError(key, str(beside), "a JSON object of quantisation settings")
    return quant


LENGTHS_CACHE_ENTRIES = 16  # distinct length files kept parsed per process
_LENGTHS: files.FileCache[np.ndarray] = files.FileCache(LENGTHS_CACHE_ENTRIES)


def read_lengths_file(path: Path, key: str) -> np.ndarray:
    """Token counts, one positive integer per line; blank lines and '#' comments skipped.
    An unchanged file is parsed once per process; the array is read-only, being shared.
    Devices, FIFOs and files over files.MAX_LENGTHS_FILE_BYTES are refused unread."""
    files.check_regular(path, key, files.MAX_LENGTHS_FILE_BYTES, "file of token counts")
    stamp = files.stamp(path)
    if stamp is None:  # the read fails and says why
        return _parse_lengths(path, key)
    return _LENGTHS.get(stamp, lambda: _parse_lengths(path, key))


def _parse_lengths(path: Path, key: str) -> np.ndarray:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        raise InputError(key, str(path), "a readable UTF-8 file of token counts") from None
    values = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_TOKEN_COUNT:
            raise InputError(f"{path}:{number}", text,
                             f"a positive integer token count ≤ {MAX_TOKEN_COUNT:,}")
        values.append(int(text))
    if not values:
        raise InputError(str(path), "no values", "at least one token count")
    tokens = np.asarray(values, dtype=np.int64)
    tokens.flags.writeable = False
    return tokens
