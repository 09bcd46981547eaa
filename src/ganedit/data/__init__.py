"""Data that training and evaluation share: degradation synthesis (`synth`), the index of a tagged image
set (`tagset`, the one ``tags.json`` reader) and paired folders (`pairs`, the one input/target matcher).

Imports only the layers below it (errors, images, tasks); `ganedit.train` and `ganedit.eval` import it,
never the other way round.
"""
