from avtool.models.text import split_sentences, text_words


def test_split_sentences_keeps_every_word():
    text = (
        "Dr. Smith arrived at 3 p.m. yesterday. Was it late? No! He said: "
        '"We start now." Then\n\nA new paragraph, without end punctuation\nand a line break'
    )
    sentences = split_sentences(text)
    assert sentences[0] == "Dr. Smith arrived at 3 p.m. yesterday."
    assert "Was it late?" in sentences and "No!" in sentences
    assert " ".join(sentences).split() == text.split()


def test_split_sentences_empty_and_whitespace():
    assert split_sentences("") == []
    assert split_sentences("  \n\n  ") == []


def test_text_words_strip_punctuation():
    assert text_words('"Hello," she said -- twice.') == ["Hello", "she", "said", "twice"]
