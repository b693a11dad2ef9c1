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


# --- format characters (Unicode category Cf) ------------------------------------------------------------------

def test_a_zero_width_space_does_not_make_a_second_person():
    """The probe: "Anna\u200b Smith" was a second person beside "Anna Smith"."""
    assert normalize_name("Anna\u200b Smith") == "Anna Smith"
    assert name_key("Anna\u200b Smith") == name_key("anna smith")


def test_a_right_to_left_override_and_other_invisible_characters_are_stripped():
    # Variant: bidi overrides and isolates, a byte-order mark, a soft hyphen and a word joiner, anywhere.
    spelled = "\ufeff\u202eAnna\u00ad Sm\u2060ith\u2066\u2069\u202c"
    assert normalize_name(spelled) == "Anna Smith" and name_key(spelled) == name_key("Anna Smith")


def test_joiners_that_scripts_need_stay_in_the_spelling_but_not_in_the_key():
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # a zero-width non-joiner Persian needs
    assert "\u200c" in normalize_name(persian)
    assert name_key(persian) == name_key(persian.replace("\u200c", ""))


@FAST
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20))
def test_no_format_character_survives_in_a_key_and_normalising_is_idempotent(name):
    assert not any(unicodedata.category(c) == "Cf" for c in name_key(name))
    assert all(c in "\u200c\u200d" for c in normalize_name(name) if unicodedata.category(c) == "Cf")
    assert normalize_name(normalize_name(name)) == normalize_name(name)


def test_two_names_that_look_alike_are_told_apart_by_code_point():
    from idia.names import spell_out_difference
    said = spell_out_difference("Zo\u00eb Martin", "Zoe\u0308 Martin")
    assert said == ("U+00EB LATIN SMALL LETTER E WITH DIAERESIS vs U+0065 LATIN SMALL LETTER E, "
                    "U+0308 COMBINING DIAERESIS (from character 3)")
    assert "U+200B ZERO WIDTH SPACE vs nothing" in spell_out_difference("Anna\u200b Smith", "Anna Smith")
