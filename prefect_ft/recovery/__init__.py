"""Recovery: control channel, client, executor, and the deployments that run recovery."""
