"""One module per defense; each registers itself with `defense.base.register` when the registry is first read.

Kept light (no torch at import): a defense imports its estimator's module when it is applied."""
