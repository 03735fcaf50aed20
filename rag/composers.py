"""Choose the answer step by config: the trained reader (default) or the heuristic composer."""

from __future__ import annotations

from .composer import AnswerComposer
from .config import ComposerKind, Config
from .reader_composer import ReaderComposer


def create_composer(config: Config) -> AnswerComposer | ReaderComposer:
    """Both kinds share `compose(evidence: Evidence) -> Answer`."""
    if ComposerKind.parse(config.composer) is ComposerKind.READER:
        return ReaderComposer(config)
    return AnswerComposer(config)
