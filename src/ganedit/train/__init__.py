"""Training-side code (datasets, losses, discriminators, the config loader, the loops, the chairs renderer);
nothing in the inference path or in `ganedit.eval` imports it. Data that evaluation shares with training
(synthesis, tag sets, paired folders) lives in `ganedit.data`."""
