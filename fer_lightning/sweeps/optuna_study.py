"""A hyperparameter search that survives being stopped: Hydra's optuna sweeper with its study kept in
a SQLite file in the sweep directory (conf/hparams_search/optuna.yaml), and only the trials still
owed run when the same command runs again. The plugin itself would load the stored study and then
run all of ``n_trials`` anew. (Hydra takes sweepers only from its ``hydra_plugins`` namespace: the
sweeper class is ``hydra_plugins/fer_lightning_sweepers``, the logic here.)"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def finished_trials(study_name: str, storage: str | None) -> int:
    """Trials of a stored study that ended (complete, pruned or failed); 0 for a new study."""
    if not storage:
        return 0
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # no such study in the file yet
        return 0
    ended = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    return sum(trial.state in ended for trial in study.trials)


def trials_owed(study_name: str, storage: str | None, n_trials: int) -> int:
    """How many of ``n_trials`` a (possibly stored) study still needs; makes a SQLite file's folder."""
    if str(storage or "").startswith("sqlite:///"):  # the sweep directory is made by its first job, later
        Path(str(storage).removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    done = finished_trials(study_name, storage)
    if done:
        log.info("study %s: %d of %d trials already ended, %d to go", study_name, done, n_trials,
                 max(n_trials - done, 0))
    return max(n_trials - done, 0)
