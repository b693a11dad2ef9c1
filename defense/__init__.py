"""Defenses against identity inference, each measured for what it costs.

base     the Defense protocol and registry (one module per defense in kinds/);
training what both redactors train with: the loss terms and the one training loop;
redact   fine-tunes the text encoder so redacted names read as a neutral phrase (a new checkpoint);
redact_image  fine-tunes the image tower so the redacted faces lose their names' directions (or embed like the
              mean face, as the authors);
probes   unseen photos, held-out phrasings and name variants; relearn  the relearning probe;
perturb  changes embeddings at inference time (noise, or projecting out the names' directions);
utility  zero-shot top-1 accuracy on a labelled folder: what a defense costs ordinary use;
sweep    a perturbation's trade-off, strength by strength;
verify   attack before, defend, attack after, utility before and after: one verification.json.
"""
