"""How a failed job of a multirun reports its failure, so that the sweep goes on.

Hydra's basic sweeper stops the sweep after the first job that raised, so a failed run returns NaN
instead (and is listed as failed). The optuna sweeper is the other way round: it records a job that
raised as a FAIL trial and continues (up to ``max_failure_rate``), while a NaN return makes
``optuna.Study.tell`` raise inside the sweeper's own error handling and ends the whole search.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

# Sweepers that record a raising job as a failed trial and carry on: the optuna plugin's, and the
# project's resumable one built on it (conf/hparams_search/optuna.yaml).
SWEEPERS_THAT_RECORD_FAILURES = ("hydra_plugins.hydra_optuna_sweeper.", "hydra_plugins.fer_lightning_sweepers.")


def failed_job_raises(hydra_cfg: DictConfig) -> bool:
    """True when this multirun's sweeper wants a failed job to raise rather than return NaN."""
    target = str(OmegaConf.select(hydra_cfg, "sweeper._target_", default="") or "")
    return target.startswith(SWEEPERS_THAT_RECORD_FAILURES)
