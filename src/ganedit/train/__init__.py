"""Training-side code (data synthesis, datasets, losses, loops); nothing in the inference path imports it."""
