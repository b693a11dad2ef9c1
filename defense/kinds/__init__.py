"""One module per defense; each registers itself with `defense.base.register` when imported."""
