from textkit import (
    slugify,
    split_identifier,
    to_camel_case,
    to_snake_case,
    to_title_case,
    tokenize,
    word_frequencies,
)


def test_tokenize_lowercases_and_strips_punctuation_by_default():
    assert tokenize("Hello, World! (Again)") == ["hello", "world", "again"]


def test_word_frequencies_sorts_by_count_then_word():
    assert word_frequencies("b a b d c a b") == [("b", 3), ("a", 2), ("c", 1), ("d", 1)]


def test_word_frequencies_top_limits_results():
    assert word_frequencies("x y y z z z", top=2) == [("z", 3), ("y", 2)]


def test_split_identifier_keeps_acronym_together():
    assert split_identifier("HTTPServer") == ["http", "server"]


def test_split_identifier_splits_after_digits():
    assert split_identifier("utf8Decoder") == ["utf8", "decoder"]


def test_to_snake_case_from_pascal_case():
    assert to_snake_case("UserAccountID") == "user_account_id"


def test_to_camel_case_lower_first_by_default():
    assert to_camel_case("max_line_length") == "maxLineLength"


def test_to_camel_case_upper_first_gives_pascal_case():
    assert to_camel_case("max-line-length", upper_first=True) == "MaxLineLength"


def test_to_camel_case_of_separators_only_is_empty():
    assert to_camel_case("__") == ""


def test_to_title_case_capitalises_minor_last_word():
    assert to_title_case("what is it FOR") == "What Is It For"


def test_slugify_lowercases_and_joins_with_dashes():
    assert slugify("Hello, World!") == "hello-world"


def test_slugify_default_max_length_is_forty():
    assert slugify("a" * 45) == "a" * 40


def test_slugify_cut_does_not_end_with_separator():
    assert slugify("abcd efgh", max_length=5) == "abcd"
