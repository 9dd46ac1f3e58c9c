"""Run configuration: generic loading (`loading`), a retrieval run's sections
(`retrieval`) and a moment run's (`moments`). The retrieval names are exported here, as
before the split (`from vidret.config import load_config, RunConfig`)."""

from vidret.config.loading import (
    ConfigSection,
    explain_validation,
    read_config_mapping,
    validate_sections,
)
from vidret.config.retrieval import (
    DataConfig,
    LossConfig,
    ModelConfig,
    RunConfig,
    TextConfig,
    TrainConfig,
    load_config,
    loss_keys_given,
    parse_config,
)

__all__ = [
    "ConfigSection",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "RunConfig",
    "TextConfig",
    "TrainConfig",
    "explain_validation",
    "load_config",
    "loss_keys_given",
    "parse_config",
    "read_config_mapping",
    "validate_sections",
]
