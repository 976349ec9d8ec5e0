"""The pure core: the plan model, its source format, the timeline, changes and diffs; no I/O, no clock."""
