"""Pruning: masks over the prunable weights, magnitude pruning schedules, language pathways.

`masks` holds the mask format and ranking, `pathways` the training hook that confines each
language's updates to its mask, `prune` the agnostic / mono / pathways procedures.
"""
