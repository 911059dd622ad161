"""kbt operator."""
