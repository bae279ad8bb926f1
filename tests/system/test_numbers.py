from bml_site.numbers import as_id


def test_ids_are_ascii_digits_the_database_can_hold():
    assert as_id("42") == 42 and as_id(" 7 ") == 7 and as_id(0) == 0 and as_id(5) == 5
    for not_an_id in ("²", "٣", "-1", "1.5", "1e3", "", None, [], True, 2**63, "9" * 19, -1):
        assert as_id(not_an_id) is None, not_an_id
