import pytest
from django.core.exceptions import ValidationError

from apps.storage.paths import BosPath, parse_bos_uri, validate_bucket_name, validate_key


@pytest.mark.parametrize(
    "uri,expected",
    [
        ("bos://data/train/a.csv", BosPath("data", "train/a.csv")),
        ("bos:/data/train/", BosPath("data", "train/")),  # the spec's single-slash form
        ("bos://data", BosPath("data", "")),
        ("  bos://data/x  ", BosPath("data", "x")),
    ],
)
def test_bos_paths_parse_in_both_spellings(uri, expected):
    assert parse_bos_uri(uri) == expected


@pytest.mark.parametrize(
    "uri", ["s3://data/x", "bos:///x", "data/x", "bos://Bad_Bucket/x", "bos://data/../x"]
)
def test_bad_bos_paths_are_refused(uri):
    with pytest.raises(ValidationError):
        parse_bos_uri(uri)


@pytest.mark.parametrize("name", ["abc", "my-bucket.2", "a" * 63])
def test_good_bucket_names(name):
    assert validate_bucket_name(name) == name


@pytest.mark.parametrize(
    "name", ["ab", "a" * 64, "Upper", "under_score", "-lead", "trail-", "a..b", "192.168.1.1"]
)
def test_bucket_names_follow_s3_rules(name):
    with pytest.raises(ValidationError, match="Invalid bucket name"):
        validate_bucket_name(name)


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "a/../../b", "/abs", "a//b", "tab\there", "nul\x00", "back\\slash"]
)
def test_dangerous_keys_are_refused(key):
    with pytest.raises(ValidationError):
        validate_key(key)


def test_long_keys_are_refused():
    with pytest.raises(ValidationError, match="1024 bytes"):
        validate_key("k" * 1025)
