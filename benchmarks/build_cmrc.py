"""Build (or reuse) the CMRC 2018 index for a split and time it: python benchmarks/build_cmrc.py dev"""

import sys
import time
from pathlib import Path

from rag import KnowledgeBase
from rag.evaluation import read_squad

split = sys.argv[1] if len(sys.argv) > 1 else "dev"
src = Path(__file__).resolve().parent.parent / "data" / "cmrc2018" / f"cmrc2018_{split}.json"
qa = read_squad(src)
t = time.perf_counter()
kb = KnowledgeBase(path=f"index/cmrc2018_{split}")
kb.add_documents(qa.documents, progress=True)
kb.save()
print(
    f"built {len(kb.documents)} paragraphs / {len(kb.chunks)} chunks in {time.perf_counter() - t:.1f}s",
    kb.build_seconds,
)
