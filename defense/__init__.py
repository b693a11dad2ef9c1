"""Defenses against identity inference, each measured for what it costs.

redact   fine-tunes the text encoder so redacted names read as a neutral phrase (a new checkpoint);
perturb  changes embeddings at inference time (noise, or projecting out the names' directions);
utility  zero-shot top-1 accuracy on a labelled folder: what a defense costs ordinary use;
sweep    a perturbation's trade-off, strength by strength;
verify   attack before, defend, attack after, utility before and after: one verification.json.
"""
