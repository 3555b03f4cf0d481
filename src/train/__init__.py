"""The training loop: settings, train step, optimizer, learning rate, checkpoints, validation, metrics."""
