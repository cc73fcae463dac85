"""Task-run history from the Prefect API as arrays: the reader, retried attempts, the resource
samples `ft_task` records, and the detection flow's body. Submodules are imported on use, so a
task that only records resource samples never imports numpy.
"""
