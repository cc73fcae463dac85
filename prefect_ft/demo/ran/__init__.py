"""The RAN LLM pipeline of the demo (issue 11): corpus, model, model server, IPC pool, pipeline."""
