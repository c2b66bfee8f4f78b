"""hydra/sweeper: Hydra's optuna sweeper that runs only the trials a stored study still owes
(fer_lightning/sweeps/optuna_study.py)."""

from __future__ import annotations

from typing import Any

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class ResumableOptunaSweeper(OptunaSweeper):
    def sweep(self, arguments: list[str]) -> Any:
        from fer_lightning.sweeps.optuna_study import trials_owed

        impl = self.sweeper
        impl.n_trials = trials_owed(impl.study_name, impl.storage, impl.n_trials)
        if impl.n_trials == 0:
            return None
        return super().sweep(arguments)
