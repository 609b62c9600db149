"""The training engine: data, models, optimizer stack, loop, distributed, checkpoints, records."""
