"""Running models: the device, thread and precision policy shared by editing and training.

Only `ganedit.runtime.devices` lives here so far; the editor and its tiling may follow.
"""
