"""kbt: Kubernetes Batch Transform."""
