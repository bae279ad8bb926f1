"""Sentence segmentation: the spec's default separators (Chinese and English periods, question
and exclamation marks), with offsets that always slice to the exact sentence."""

import pytest

from apps.annotation.sentences import split


def sentences(text: str) -> list[str]:
    spans = split(text)
    for start, end in spans:
        piece = text[start:end]
        assert piece, (start, end)
        assert piece == piece.strip(), (start, end)
    assert spans == sorted(spans)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), "overlapping"
    return [text[start:end] for start, end in spans]


def test_chinese():
    assert sentences("今天天气很好。我们去公园吧！你去吗？好的．") == [
        "今天天气很好。",
        "我们去公园吧！",
        "你去吗？",
        "好的．",
    ]


def test_english():
    assert sentences("The sky is blue. Is it? Yes! It is.") == [
        "The sky is blue.",
        "Is it?",
        "Yes!",
        "It is.",
    ]


def test_mixed_chinese_and_english():
    text = "刘备是刘禅的父亲。Liu Bei was the father of Liu Shan. 诸葛亮呢？He was a chancellor!"
    assert sentences(text) == [
        "刘备是刘禅的父亲。",
        "Liu Bei was the father of Liu Shan.",
        "诸葛亮呢？",
        "He was a chancellor!",
    ]


def test_ascii_punctuation_in_chinese_text():
    """Chinese typed with ASCII punctuation and no space after it still splits."""
    assert sentences("今天很好.我们走吧!你呢?好") == ["今天很好.", "我们走吧!", "你呢?", "好"]


def test_closing_quotes_belong_to_the_sentence_that_ends():
    assert sentences("他说：“你好。”我们走吧！") == ["他说：“你好。”", "我们走吧！"]
    assert sentences('He said "Stop." Then left.') == ['He said "Stop."', "Then left."]
    assert sentences("她问：「真的吗？」』他点头。") == ["她问：「真的吗？」』", "他点头。"]
    assert sentences("（见附录。）下一句。") == ["（见附录。）", "下一句。"]
    assert sentences("It was 'over.' Done (really!) yes.") == [
        "It was 'over.'",
        "Done (really!)",
        "yes.",
    ]
    assert sentences("《三国演义。》【注释！】") == ["《三国演义。》", "【注释！】"]


def test_runs_of_terminators_stay_together():
    assert sentences("真的吗？！太好了！！走吧。。。") == ["真的吗？！", "太好了！！", "走吧。。。"]
    assert sentences("What?! No!! Fine...") == ["What?!", "No!!", "Fine..."]


def test_ellipses():
    assert sentences("Wait... what happened?") == ["Wait...", "what happened?"]
    assert sentences("Wait...what happened?") == ["Wait...what happened?"]
    assert sentences("他犹豫了……然后走了。") == ["他犹豫了……然后走了。"]


def test_numbers_do_not_split():
    assert sentences("It costs 3.5 dollars. Sales reached 1.000.000 units.") == [
        "It costs 3.5 dollars.",
        "Sales reached 1.000.000 units.",
    ]
    assert sentences("增长了3.5%。价格是３．５元。") == ["增长了3.5%。", "价格是３．５元。"]
    assert sentences("Version 2.0.1 is out.") == ["Version 2.0.1 is out."]
    assert sentences("The answer is 42. Next.") == ["The answer is 42.", "Next."]


def test_a_period_inside_a_word_does_not_split():
    assert sentences("Write e.g.x or see example.com for more. Done.") == [
        "Write e.g.x or see example.com for more.",
        "Done.",
    ]
    assert sentences("Open https://a.example.com/q?x=1&y=2 now!") == [
        "Open https://a.example.com/q?x=1&y=2 now!"
    ]


def test_abbreviations():
    """Titles and e.g./i.e. do not end a sentence; other abbreviations do (documented)."""
    assert sentences("Mr. Smith met Dr. Brown, e.g. at work. They talked.") == [
        "Mr. Smith met Dr. Brown, e.g. at work.",
        "They talked.",
    ]
    assert sentences("Bring apples, pears, etc. Then go.") == [
        "Bring apples, pears, etc.",
        "Then go.",
    ]
    # Only the word itself: "Hamr." is not "mr.".
    assert sentences("He read Hamr. Then slept.") == ["He read Hamr.", "Then slept."]


def test_line_breaks_end_sentences():
    text = "第一章 总则\n- 条目一\r\n- item two\rLast line without stop\u2028尾句"
    assert sentences(text) == [
        "第一章 总则",
        "- 条目一",
        "- item two",
        "Last line without stop",
        "尾句",
    ]


def test_blank_lines_and_whitespace_are_dropped():
    text = "  \n\n   第一句。   \t\n\u3000\u3000第二句！  \n\n  "
    assert sentences(text) == ["第一句。", "第二句！"]


def test_leading_and_trailing_whitespace_are_trimmed_with_exact_offsets():
    text = "   Hello world.   Bye.  "
    spans = split(text)
    assert spans == [(3, 15), (18, 22)]
    assert [text[a:b] for a, b in spans] == ["Hello world.", "Bye."]


def test_text_without_terminators_is_one_sentence():
    assert sentences("没有标点的句子") == ["没有标点的句子"]
    assert split("没有标点的句子") == [(0, 7)]


@pytest.mark.parametrize("text", ["", " ", "\n\n", "\u3000\t \r\n"])
def test_empty_text(text):
    assert split(text) == []


def test_offsets_cover_all_non_whitespace_text():
    text = (
        '他说：“你好。”我们走吧！He said "Stop." Then left.\n'
        "价格3.5元？真的！！  Mr. Li went to example.com... OK\n\n结束"
    )
    spans = split(text)
    covered = set()
    for start, end in spans:
        covered.update(range(start, end))
    assert all(text[i].isspace() for i in range(len(text)) if i not in covered)
    assert "".join("".join(text[a:b].split()) for a, b in spans) == "".join(text.split())
