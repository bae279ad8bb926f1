"""An upload guesses whether the file's first line is a header, from its first rows; the
user can still say otherwise."""

from django.test import Client

from tests.datasets.conftest import IRIS
from workers.runners.table_preview import guess_header, preview, split_rows

WITH_HEADER = b"sepal length,width,species\n5.1,3.5,setosa\n4.9,3.0,setosa\n"


def guess(text: str) -> bool:
    return guess_header(split_rows(text, ","))


def test_a_text_line_above_numbers_is_a_header():
    assert guess(WITH_HEADER.decode())
    assert guess("when,ok\n2024-01-01,true\n2024-01-02,false\n")


def test_a_first_line_like_the_rest_is_not_a_header():
    assert not guess(IRIS.decode())
    assert not guess("1,2\n3,4\n")
    assert not guess("x,1\ny,2\n")  # a number in the first line: data
    assert not guess("name,city\nalice,paris\nbob,rome\n")  # text only: no evidence
    assert not guess("a,a\n1,2\n3,4\n")  # names repeat
    assert not guess("a,\n1,2\n3,4\n")  # a name is missing
    assert not guess("a,NA\n1,2\n3,4\n")  # a missing value, not a name
    assert not guess("a,b\n")  # nothing below to compare with


def test_the_preview_reads_the_file_as_guessed_unless_told():
    guessed = preview(WITH_HEADER, separator=",", header=None, encoding="utf-8")
    assert guessed["header"] is True and guessed["header_guess"] is True
    assert [c["suggested_name"] for c in guessed["columns"]] == ["sepal_length", "width", "species"]
    assert guessed["rows"][0] == ["5.1", "3.5", "setosa"]
    told = preview(WITH_HEADER, separator=",", header=False, encoding="utf-8")
    assert told["header"] is False and told["header_guess"] is True
    assert told["rows"][0] == ["sepal length", "width", "species"]


def test_the_upload_page_presets_the_guess_and_says_so(owner, dataset, put):
    web = Client()
    web.force_login(owner)
    url = f"/datasets/{dataset.pk}/upload/"
    step1 = web.get(url).content.decode()
    assert '<option value="" selected>Guess from the first rows</option>' in step1

    with_header = put("data/named.csv", WITH_HEADER)
    page = web.post(url, {"source": with_header, "separator": ",", "step": "preview"})
    html = page.content.decode()
    assert "header guessed from the first rows" in html
    assert '<option value="1" selected>First line is a header</option>' in html
    assert '<input type="hidden" name="header" value="1">' in html
    assert 'value="sepal_length"' in html

    without = put("data/iris.csv", IRIS)
    html = web.post(url, {"source": without, "separator": ",", "step": "preview"}).content
    html = html.decode()
    assert "header guessed from the first rows" in html
    assert '<option value="0" selected>No header</option>' in html
    assert 'value="col_1"' in html and "5.1" in html

    # The user's own choice wins, and is not called a guess.
    told = {"source": with_header, "separator": ",", "header": "0", "step": "preview"}
    html = web.post(url, told).content.decode()
    assert "header guessed" not in html
    assert '<option value="0" selected>No header</option>' in html
    assert "looks like a header" in html


def test_the_api_preview_answers_the_guess(owner, dataset, put, api_client_for):
    api = api_client_for(owner)
    url = f"/api/v1/datasets/{dataset.pk}/preview/"
    with_header = put("data/named.csv", WITH_HEADER)
    without = put("data/iris.csv", IRIS)

    answer = api.post(url, {"source": with_header}, format="json").json()
    assert (answer["header"], answer["header_guess"], answer["header_guessed"]) == (
        False,
        True,
        False,
    )  # the API's default stays "no header"; the guess is said
    answer = api.post(url, {"source": with_header, "header": None}, format="json").json()
    assert (answer["header"], answer["header_guess"], answer["header_guessed"]) == (
        True,
        True,
        True,
    )
    assert answer["columns"][0]["suggested_name"] == "sepal_length"
    answer = api.post(url, {"source": without, "header": None}, format="json").json()
    assert (answer["header"], answer["header_guess"]) == (False, False)
