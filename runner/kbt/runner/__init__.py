"""The data plane: list, shard, read, split, batch, predict, write."""
