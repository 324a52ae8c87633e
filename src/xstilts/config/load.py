"""Loading an experiment YAML: the schema and every grid point validated, errors naming the field and line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from xstilts.config.grid import GridError, variants
from xstilts.config.schema import ExperimentConfig
from xstilts.config.yaml_file import field_error, read_yaml_mapping, validation_error
from xstilts.errors import UserError


@dataclass(frozen=True)
class ConfigFile:
    """A validated experiment file, with what later errors about it need: its path and YAML node tree."""

    path: Path
    cfg: ExperimentConfig
    root: yaml.Node
    text: str

    def error(self, loc: tuple[Any, ...], msg: str) -> UserError:
        """``path:line: field: msg`` for a problem found after validation (an unknown task, a bad model)."""
        return field_error(self.path, self.root, loc, msg)


def load_config(path: str | Path) -> ConfigFile:
    """Read and validate an experiment YAML; any problem is a one-line UserError."""
    path = Path(path)
    data, root = read_yaml_mapping(path, "experiment")
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as e:
        raise validation_error(path, root, e) from None
    try:
        variants(cfg)  # every grid point must validate
    except GridError as e:
        raise field_error(path, root, e.loc, e.msg) from None
    return ConfigFile(path, cfg, root, path.read_text(encoding="utf-8"))
