"""Thin Hydra ``Sweeper`` that hands the work to :class:`embexp.sweep.sweeper.OptunaSweep`."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class EmbexpOptunaSweeper(Sweeper):
    def __init__(self, **conf: Any) -> None:
        from embexp.sweep.sweeper import OptunaSweep

        self._impl = OptunaSweep(**conf)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self._impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.hydra_context, self.config, self.launcher = hydra_context, config, self._impl.launcher

    def sweep(self, arguments: list[str]) -> Any:
        """The sweep; a bad config or a storage that cannot be opened is one line on stderr and
        exit status 2, as for a single run (not Hydra's traceback)."""
        from embexp.cli.common import clean_errors

        return clean_errors(self._impl.sweep)(arguments)
