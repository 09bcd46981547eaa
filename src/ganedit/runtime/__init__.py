"""Running models: arrays in, arrays out, on a device. No file I/O, no printing.

    devices     the one device, threads and precision policy, for editing and training alike
    tiling      padding to the model's grid; equal overlapping tiles, blended over their overlap
    editor      `Editor`: a PAN generator applied to whole photographs of any size (uses tiling)
    rerenderer  `Rerenderer`: a TDGAN re-rendering an object at other tags (pose, light)
    tags        ``--tag NAME=VALUE`` options -> a sweep of target tags (no torch)

`ganedit.load` (api) locates a checkpoint and returns an `Editor` or a `Rerenderer`; modules here never
import the api, the command line or the folder runner. Importing this package imports nothing.
"""
