"""Actor shells: thin @ray.remote classes hosting one plain core each."""
