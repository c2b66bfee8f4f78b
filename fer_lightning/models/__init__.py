"""Networks, the LightningModule, learning-rate schedules and batch mixing."""
