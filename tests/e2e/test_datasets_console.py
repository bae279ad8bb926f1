import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e
IRIS = ROOT / "fixtures" / "datasets" / "iris.csv"


def test_the_iris_walkthrough_in_a_browser(page, tmp_path):
    """The spec's walk-through: create a data set, upload headerless iris.csv (comma
    separator) from bos://, preprocess (rename columns), then see the statistics."""
    sign_in(page)
    page.click("text=Object storage (BOS)")
    page.fill("input[name=name]", "e2e-data")
    page.click("text=Create bucket")
    page.wait_for_selector("text=Bucket bos://e2e-data/ created.")

    page.click("text=Data sets")
    page.click("text=Create data set")
    page.fill("input[name=name]", "iris_e2e")
    # Said, not left to the default (the project's first bucket): other browser tests share
    # this appliance and may have made a bucket first.
    page.fill("input[name=storage_path]", "bos://e2e-data/datasets/iris_e2e/")
    page.click("button:text('Confirm')")
    page.wait_for_selector("text=Data set iris_e2e created")

    # Step 1: the file goes to storage from this computer, and becomes the bos:// source.
    page.set_input_files("#upload-input", str(IRIS))
    page.wait_for_function(
        "document.getElementById('source').value.startsWith('bos://e2e-data/datasets/')"
    )
    assert page.input_value("#source").endswith("/uploads/iris.csv")
    page.check("input[name=mode][value=replace]")
    page.select_option("select[name=separator]", ",")
    assert page.input_value("select[name=header]") == ""  # guessed from the first rows
    page.click("button:text('Next')")

    # Step 2: guessed header and types with the first rows; name the columns and confirm.
    page.wait_for_selector("#columns")
    assert page.is_visible("text=header guessed from the first rows")
    assert page.input_value("#header-choice select[name=header]") == "0"
    # The guess can be overridden here: the rows are read again with the other setting.
    page.select_option("#header-choice select[name=header]", "1")
    page.click("#header-choice button:text('Read again')")
    page.wait_for_selector("text=the header line looks like data")
    assert page.is_hidden("#header-guessed")
    page.select_option("#header-choice select[name=header]", "0")
    page.click("#header-choice button:text('Read again')")
    page.wait_for_selector("#columns td:text('5.1')")
    assert "Iris-setosa" in page.inner_text("#columns")
    assert page.input_value("select[name=col_type_0]") == "float"
    assert page.input_value("select[name=col_type_4]") == "string"
    for index, name in enumerate(["sepal_len", "sepal_wid", "petal_len", "petal_wid", "kind"]):
        page.fill(f"input[name=col_name_{index}]", name)
    page.click("button:text('Confirm and convert')")
    page.wait_for_selector("text=is converting")
    page.wait_for_selector("#dataset-status:text('succeeded')", timeout=90_000)
    assert "150 rows" in page.inner_text("dl.facts")

    page.click("text=Statistics")
    # The histogram is drawn by BMLCharts from the bins the page carries: read it back.
    page.wait_for_selector("#statistics tr[data-column=sepal_len] figure[data-chart=histogram]")
    histogram = page.evaluate(
        """() => {
          const figure = document.querySelector("#statistics tr[data-column=sepal_len] figure");
          const series = BMLCharts.get(figure).getOption().series[0];
          return { type: series.type, counts: series.data };
        }"""
    )
    assert histogram["type"] == "bar" and sum(histogram["counts"]) == 150
    assert page.outside_requests == []  # ECharts is vendored: nothing from a CDN
    row = page.inner_text("#statistics tr[data-column=sepal_len]")
    assert "5.84333" in row and "4.3" in row and "7.9" in row
    assert "Iris-virginica" in page.inner_text("#statistics tr[data-column=kind]")
    # A wide table scrolls in its box: scrolled to the end, its last column is in view and the
    # column names stay.
    edges = page.evaluate(
        """() => {
          const box = document.getElementById("statistics-scroll");
          box.scrollLeft = box.scrollWidth;
          const edge = (el) => el.getBoundingClientRect();
          return {
            box: edge(box),
            last: edge(box.querySelector("thead th:last-child")),
            name: edge(box.querySelector("tr[data-column=sepal_len] > td:first-child")),
          };
        }"""
    )
    assert edges["last"]["right"] <= edges["box"]["right"] + 1
    assert edges["name"]["left"] >= edges["box"]["left"] - 1

    page.click("text=Raw data")
    assert page.locator("#raw-data tbody tr").count() == 50
    page.click("text=Next ›")
    page.wait_for_selector("text=Rows 51–100 of 150")
