"""Names: one spelling per name, and one key per person, whatever the Unicode form, case or spacing."""

import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idia.names import name_key, normalize_name

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

name_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20)


@FAST
@given(name_text)
def test_name_normalisation_is_idempotent_and_ignores_unicode_form(name):
    once = normalize_name(name)
    assert normalize_name(once) == once
    assert once == normalize_name(unicodedata.normalize("NFD", name)) == normalize_name(
        unicodedata.normalize("NFC", name))
    assert unicodedata.is_normalized("NFC", once)
    assert name_key(unicodedata.normalize("NFD", name)) == name_key(name)
    assert name_key(" ".join(once.casefold().split()) + "  ") == name_key(name)  # case and spacing blind


@FAST
@given(st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzëöé "), min_size=1, max_size=20))
def test_name_keys_of_case_variants_are_equal(name):
    assert name_key(name.upper()) == name_key(name.swapcase()) == name_key(unicodedata.normalize("NFD", name))
