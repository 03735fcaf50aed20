"""The encoder and the reader load e5's 250k-piece tokenizer once, and truncation stays the caller's."""

import shutil

from tokenizers import Tokenizer

from rag.offline_model import ensure_model
from rag.reader_export import ensure_reader
from rag.tokenizer_cache import shared_tokenizer, truncated


def test_one_tokenizer_per_file_content_with_truncation_off(tmp_path):
    base = ensure_model() / "tokenizer.json"
    copy = tmp_path / "tokenizer.json"
    shutil.copyfile(base, copy)
    tokenizer = shared_tokenizer(base)
    assert shared_tokenizer(copy) is tokenizer
    assert tokenizer.truncation is None and tokenizer.padding is None
    text = "青岛海关发布数据。" * 200  # ~1,400 tokens
    assert len(tokenizer.encode(text).ids) > 512


def test_truncated_cuts_as_the_tokenizers_own_truncation_does():
    base = ensure_model() / "tokenizer.json"
    own = Tokenizer.from_file(str(base))
    own.enable_truncation(512)
    text = "2024年青岛市进出口达9076.7亿元，同比增长3.6%。" * 60
    mine = truncated(shared_tokenizer(base), text, 512)
    expected = own.encode(text)
    assert mine.ids == expected.ids and mine.offsets == expected.offsets and len(mine.ids) == 512
    assert mine.ids[0] == own.token_to_id("<s>") and mine.ids[-1] == own.token_to_id("</s>")


def test_the_default_reader_shares_the_encoders_tokenizer():
    folder = ensure_reader()
    assert (folder / "tokenizer.json").read_bytes() == (ensure_model() / "tokenizer.json").read_bytes()
    assert shared_tokenizer(folder / "tokenizer.json") is shared_tokenizer(ensure_model() / "tokenizer.json")
